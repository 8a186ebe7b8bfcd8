-- Why: undoes 2220_analytics_audit_policies.sql (policies, grants, RLS flags).
drop policy if exists deny_members on public.system_metrics;
drop policy if exists select_as_admin on public.audit_logs;
drop policy if exists select_own_company_by_role on public.analytics_daily;
revoke all on sequence public.system_metrics_id_seq from service_role;
revoke all on table public.analytics_daily, public.audit_logs, public.system_metrics
  from anon, authenticated, service_role;
alter table public.system_metrics no force row level security;
alter table public.system_metrics disable row level security;
alter table public.audit_logs no force row level security;
alter table public.audit_logs disable row level security;
alter table public.analytics_daily no force row level security;
alter table public.analytics_daily disable row level security;
