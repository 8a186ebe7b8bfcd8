-- Why: row level security and grants of the lifecycle tables (docs/access-matrix.md, issue
-- "owners and administradores can still read their company's archive; nobody else"):
-- archive tables and legal holds are readable by owner/administrador of the company and
-- written only by service_role (the lifecycle jobs, compliance staff through the backend);
-- the job and export ledgers are platform-wide, service_role only.
{% from 'policies/_rls.sql' import rls -%}


{{ rls('archive.conversations_archived') }}
create policy select_as_admin on archive.conversations_archived
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.conversations_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

{{ rls('archive.messages_archived') }}
create policy select_as_admin on archive.messages_archived
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.messages_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

{{ rls('archive.message_reactions_archived') }}
create policy select_as_admin on archive.message_reactions_archived
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.message_reactions_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

{{ rls('archive.hitl_escalations_archived') }}
create policy select_as_admin on archive.hitl_escalations_archived
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.hitl_escalations_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

{{ rls('archive.knowledge_queries_archived') }}
create policy select_as_admin on archive.knowledge_queries_archived
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.knowledge_queries_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

{{ rls('archive.integration_logs_archived') }}
create policy select_as_admin on archive.integration_logs_archived
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.integration_logs_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

{{ rls('archive.analytics_archived') }}
create policy select_as_admin on archive.analytics_archived
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.analytics_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

{{ rls('public.legal_holds') }}
create policy select_as_admin on public.legal_holds
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on public.legal_holds is
  'Owner/administrador read their company''s legal holds; supervisors, operadores and other companies see nothing. Writes: service_role only.';

{{ rls('private.job_runs') }}
create policy deny_members on private.job_runs
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on private.job_runs is
  'Platform bookkeeping of the lifecycle jobs: service_role (and the job owner) only; no tenant role reads or writes it.';

{{ rls('private.cold_exports') }}
create policy deny_members on private.cold_exports
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on private.cold_exports is
  'Platform bookkeeping of the lifecycle jobs: service_role (and the job owner) only; no tenant role reads or writes it.';

grant usage, select on sequence private.job_runs_id_seq to service_role;
