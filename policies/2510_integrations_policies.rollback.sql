-- Why: undoes 2510_integrations_policies.sql (policies, grants, RLS flags).
{% from 'policies/_read_only.sql' import drop_read_only_when_inactive %}
{{ drop_read_only_when_inactive('public.integration_logs') }}
{{ drop_read_only_when_inactive('public.integrations') }}

drop policy if exists deny_members on private.integration_credentials;
drop policy if exists select_as_admin on public.integration_logs;
drop policy if exists delete_as_admin on public.integrations;
drop policy if exists update_as_admin on public.integrations;
drop policy if exists insert_as_admin on public.integrations;
drop policy if exists select_as_admin on public.integrations;
revoke all on table public.integrations, private.integration_credentials, public.integration_logs
  from anon, authenticated, service_role;
alter table public.integration_logs no force row level security;
alter table public.integration_logs disable row level security;
alter table private.integration_credentials no force row level security;
alter table private.integration_credentials disable row level security;
alter table public.integrations no force row level security;
alter table public.integrations disable row level security;
