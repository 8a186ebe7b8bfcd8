-- Why: undoes 2520_analytics_policies.sql (policies, grants, RLS flags).
{% from 'policies/_read_only.sql' import drop_read_only_when_inactive %}
{{ drop_read_only_when_inactive('public.analytics_daily') }}

drop policy if exists deny_members on public.system_metrics;
drop policy if exists select_own_company_by_role on public.analytics_daily;
revoke all on sequence public.system_metrics_id_seq from service_role;
revoke all on table public.analytics_daily, public.system_metrics
  from anon, authenticated, service_role;
alter table public.system_metrics no force row level security;
alter table public.system_metrics disable row level security;
alter table public.analytics_daily no force row level security;
alter table public.analytics_daily disable row level security;
