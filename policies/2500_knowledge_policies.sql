-- Why: RLS and grants of the knowledge domain (docs/access-matrix.md):
-- documents and chunks - owner/administrador full, supervisor and operador
-- read; knowledge_queries - read like conversations (owner/administrador/
-- supervisor all of the company, operador only rows of assigned chatbots),
-- written only by the bot engine (service_role).

alter table public.documents enable row level security;
alter table public.documents force row level security;
alter table public.document_chunks enable row level security;
alter table public.document_chunks force row level security;
alter table public.knowledge_queries enable row level security;
alter table public.knowledge_queries force row level security;

revoke all on table public.documents, public.document_chunks, public.knowledge_queries
  from public, anon, authenticated;

grant select, delete on table public.documents to authenticated;
grant insert (company_id, id, title, mime_type, storage_path, size_bytes, metadata)
  on table public.documents to authenticated;
grant update (title, metadata) on table public.documents to authenticated;

grant select, delete on table public.document_chunks to authenticated;
grant insert (company_id, id, document_id, chunk_index, content, token_count, embedding, metadata)
  on table public.document_chunks to authenticated;
grant update (content, token_count, embedding, metadata) on table public.document_chunks to authenticated;

grant select on table public.knowledge_queries to authenticated;

grant all on table public.documents, public.document_chunks, public.knowledge_queries to service_role;

-- documents --------------------------------------------------------------
create policy select_own_company on public.documents
  for select to authenticated
  using (company_id = (select public.get_user_company_id()));
create policy insert_as_admin on public.documents
  for insert to authenticated
  with check (company_id = (select public.get_user_company_id())
              and (select public.get_user_role()) in ('owner', 'administrador'));
create policy update_as_admin on public.documents
  for update to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'))
  with check (company_id = (select public.get_user_company_id()));
create policy delete_as_admin on public.documents
  for delete to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));

comment on policy select_own_company on public.documents is 'Every member reads the documents of their company.';
comment on policy insert_as_admin on public.documents is 'Owner/administrador upload documents into their company.';
comment on policy update_as_admin on public.documents is 'Owner/administrador edit title/metadata of their company''s documents.';
comment on policy delete_as_admin on public.documents is 'Owner/administrador delete their company''s documents.';

-- document_chunks --------------------------------------------------------
create policy select_own_company on public.document_chunks
  for select to authenticated
  using (company_id = (select public.get_user_company_id()));
create policy insert_as_admin on public.document_chunks
  for insert to authenticated
  with check (company_id = (select public.get_user_company_id())
              and (select public.get_user_role()) in ('owner', 'administrador'));
create policy update_as_admin on public.document_chunks
  for update to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'))
  with check (company_id = (select public.get_user_company_id()));
create policy delete_as_admin on public.document_chunks
  for delete to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));

comment on policy select_own_company on public.document_chunks is 'Every member reads (and searches) the chunks of their company.';
comment on policy insert_as_admin on public.document_chunks is 'Owner/administrador add chunks to their company''s documents.';
comment on policy update_as_admin on public.document_chunks is 'Owner/administrador edit chunk content/embedding.';
comment on policy delete_as_admin on public.document_chunks is 'Owner/administrador delete chunks.';

-- knowledge_queries ------------------------------------------------------
create policy select_own_company_by_role on public.knowledge_queries
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and chatbot_id = any ((select public.get_visible_chatbot_ids())::uuid[]));

comment on policy select_own_company_by_role on public.knowledge_queries is
  'Read like conversations: owner/administrador/supervisor all of the company; operador only rows of assigned chatbots. Writes: service_role only.';

-- Read-only tenants: a suspended or canceled company writes nothing (policies/_read_only.sql).
{% from 'policies/_read_only.sql' import read_only_when_inactive %}
{{ read_only_when_inactive('public.documents') }}
{{ read_only_when_inactive('public.document_chunks') }}
{{ read_only_when_inactive('public.knowledge_queries') }}
