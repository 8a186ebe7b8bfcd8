-- Why: undoes 0500_tenancy_policies.sql: drop the policies, disable RLS and take back the
-- grants (tables return to their owner-only state).
{% from 'policies/_read_only.sql' import drop_read_only_when_inactive %}
{{ drop_read_only_when_inactive('public.audit_logs') }}
{{ drop_read_only_when_inactive('public.user_invitations') }}
{{ drop_read_only_when_inactive('public.users') }}
{{ drop_read_only_when_inactive('public.companies') }}

drop policy select_as_admin on public.audit_logs;
revoke all on table public.audit_logs from anon, authenticated, service_role;
alter table public.audit_logs no force row level security;
alter table public.audit_logs disable row level security;

drop policy select_as_admin on public.user_invitations;
revoke all on table public.user_invitations from anon, authenticated, service_role;
alter table public.user_invitations no force row level security;
alter table public.user_invitations disable row level security;

drop policy delete_lower_rank on public.users;
drop policy update_lower_rank on public.users;
drop policy update_self on public.users;
drop policy select_same_company on public.users;
revoke all on table public.users from anon, authenticated, service_role;
alter table public.users no force row level security;
alter table public.users disable row level security;

drop policy update_own_company_as_admin on public.companies;
drop policy select_own_company on public.companies;
revoke all on table public.companies from anon, authenticated, service_role;
alter table public.companies no force row level security;
alter table public.companies disable row level security;

drop policy select_own_plan on public.subscription_plans;
drop policy select_public_plans on public.subscription_plans;
revoke all on table public.subscription_plans from anon, authenticated, service_role;
alter table public.subscription_plans no force row level security;
alter table public.subscription_plans disable row level security;
