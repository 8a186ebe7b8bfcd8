-- Why: RLS and grants of the knowledge domain (docs/access-matrix.md):
-- documents and chunks - owner/administrador full, supervisor and operador
-- read; knowledge_queries - read like conversations (owner/administrador/
-- supervisor all of the company, operador only rows of assigned chatbots),
-- written only by the bot engine (service_role).

{% from 'policies/_rls.sql' import rls -%}
{{ rls('public.documents') }}
{{ rls('public.document_chunks') }}
{{ rls('public.knowledge_queries') }}

-- documents --------------------------------------------------------------
create policy select_own_company on public.documents
  for select to authenticated
  using (company_id = (select private.get_user_company_id()));
create policy insert_as_admin on public.documents
  for insert to authenticated
  with check (company_id = (select private.get_user_company_id())
              and (select private.get_user_role()) in ('owner', 'administrador'));
create policy update_as_admin on public.documents
  for update to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'))
  with check (company_id = (select private.get_user_company_id()));
create policy delete_as_admin on public.documents
  for delete to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));

comment on policy select_own_company on public.documents is 'Every member reads the documents of their company.';
comment on policy insert_as_admin on public.documents is 'Owner/administrador upload documents into their company.';
comment on policy update_as_admin on public.documents is 'Owner/administrador edit title/metadata of their company''s documents.';
comment on policy delete_as_admin on public.documents is 'Owner/administrador delete their company''s documents.';

-- document_chunks --------------------------------------------------------
create policy select_own_company on public.document_chunks
  for select to authenticated
  using (company_id = (select private.get_user_company_id()));
create policy insert_as_admin on public.document_chunks
  for insert to authenticated
  with check (company_id = (select private.get_user_company_id())
              and (select private.get_user_role()) in ('owner', 'administrador'));
create policy update_as_admin on public.document_chunks
  for update to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'))
  with check (company_id = (select private.get_user_company_id()));
create policy delete_as_admin on public.document_chunks
  for delete to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));

comment on policy select_own_company on public.document_chunks is 'Every member reads (and searches) the chunks of their company.';
comment on policy insert_as_admin on public.document_chunks is 'Owner/administrador add chunks to their company''s documents.';
comment on policy update_as_admin on public.document_chunks is 'Owner/administrador edit chunk content/embedding.';
comment on policy delete_as_admin on public.document_chunks is 'Owner/administrador delete chunks.';

-- knowledge_queries ------------------------------------------------------
create policy select_own_company_by_role on public.knowledge_queries
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[]));

comment on policy select_own_company_by_role on public.knowledge_queries is
  'Read like conversations: owner/administrador/supervisor all of the company; operador only rows of assigned chatbots. Writes: service_role only.';
