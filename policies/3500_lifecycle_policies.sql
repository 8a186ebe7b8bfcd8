-- Why: row level security and grants of the lifecycle tables (docs/access-matrix.md, issue
-- "owners and administradores can still read their company's archive; nobody else"):
-- archive tables and legal holds are readable by owner/administrador of the company and
-- written only by service_role (the lifecycle jobs, compliance staff through the backend);
-- the job and export ledgers are platform-wide, service_role only.


alter table archive.conversations_archived enable row level security;
alter table archive.conversations_archived force row level security;
revoke all on table archive.conversations_archived from public, anon, authenticated;
grant select on table archive.conversations_archived to authenticated;
grant all on table archive.conversations_archived to service_role;
create policy select_as_admin on archive.conversations_archived
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.conversations_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

alter table archive.messages_archived enable row level security;
alter table archive.messages_archived force row level security;
revoke all on table archive.messages_archived from public, anon, authenticated;
grant select on table archive.messages_archived to authenticated;
grant all on table archive.messages_archived to service_role;
create policy select_as_admin on archive.messages_archived
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.messages_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

alter table archive.message_reactions_archived enable row level security;
alter table archive.message_reactions_archived force row level security;
revoke all on table archive.message_reactions_archived from public, anon, authenticated;
grant select on table archive.message_reactions_archived to authenticated;
grant all on table archive.message_reactions_archived to service_role;
create policy select_as_admin on archive.message_reactions_archived
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.message_reactions_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

alter table archive.hitl_escalations_archived enable row level security;
alter table archive.hitl_escalations_archived force row level security;
revoke all on table archive.hitl_escalations_archived from public, anon, authenticated;
grant select on table archive.hitl_escalations_archived to authenticated;
grant all on table archive.hitl_escalations_archived to service_role;
create policy select_as_admin on archive.hitl_escalations_archived
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.hitl_escalations_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

alter table archive.knowledge_queries_archived enable row level security;
alter table archive.knowledge_queries_archived force row level security;
revoke all on table archive.knowledge_queries_archived from public, anon, authenticated;
grant select on table archive.knowledge_queries_archived to authenticated;
grant all on table archive.knowledge_queries_archived to service_role;
create policy select_as_admin on archive.knowledge_queries_archived
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.knowledge_queries_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

alter table archive.integration_logs_archived enable row level security;
alter table archive.integration_logs_archived force row level security;
revoke all on table archive.integration_logs_archived from public, anon, authenticated;
grant select on table archive.integration_logs_archived to authenticated;
grant all on table archive.integration_logs_archived to service_role;
create policy select_as_admin on archive.integration_logs_archived
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.integration_logs_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

alter table archive.analytics_archived enable row level security;
alter table archive.analytics_archived force row level security;
revoke all on table archive.analytics_archived from public, anon, authenticated;
grant select on table archive.analytics_archived to authenticated;
grant all on table archive.analytics_archived to service_role;
create policy select_as_admin on archive.analytics_archived
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on archive.analytics_archived is
  'Owner/administrador read their company''s archive; supervisors, operadores and other companies see nothing. Writes: service_role only.';

alter table public.legal_holds enable row level security;
alter table public.legal_holds force row level security;
revoke all on table public.legal_holds from public, anon, authenticated;
grant select on table public.legal_holds to authenticated;
grant all on table public.legal_holds to service_role;
create policy select_as_admin on public.legal_holds
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and (select public.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on public.legal_holds is
  'Owner/administrador read their company''s legal holds; supervisors, operadores and other companies see nothing. Writes: service_role only.';

alter table private.job_runs enable row level security;
alter table private.job_runs force row level security;
revoke all on table private.job_runs from public, anon, authenticated;
grant all on table private.job_runs to service_role;
create policy deny_members on private.job_runs
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on private.job_runs is
  'Platform bookkeeping of the lifecycle jobs: service_role (and the job owner) only; no tenant role reads or writes it.';

alter table private.cold_exports enable row level security;
alter table private.cold_exports force row level security;
revoke all on table private.cold_exports from public, anon, authenticated;
grant all on table private.cold_exports to service_role;
create policy deny_members on private.cold_exports
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on private.cold_exports is
  'Platform bookkeeping of the lifecycle jobs: service_role (and the job owner) only; no tenant role reads or writes it.';

grant usage, select on sequence private.job_runs_id_seq to service_role;

-- Read-only tenants: a suspended or canceled company writes nothing (policies/_read_only.sql).
{% from 'policies/_read_only.sql' import read_only_when_inactive %}
{{ read_only_when_inactive('archive.conversations_archived') }}
{{ read_only_when_inactive('archive.messages_archived') }}
{{ read_only_when_inactive('archive.message_reactions_archived') }}
{{ read_only_when_inactive('archive.hitl_escalations_archived') }}
{{ read_only_when_inactive('archive.knowledge_queries_archived') }}
{{ read_only_when_inactive('archive.integration_logs_archived') }}
{{ read_only_when_inactive('archive.analytics_archived') }}
{{ read_only_when_inactive('public.legal_holds') }}
