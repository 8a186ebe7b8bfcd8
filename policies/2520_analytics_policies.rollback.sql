-- Why: undoes 2520_analytics_policies.sql (policies, grants, RLS flags).
-- Every policy of these tables goes (each table's policies are all created by this
-- migration), then the grants and the RLS flags (policies/_rls.sql).
{% from 'policies/_rls.sql' import drop_rls -%}
revoke all on sequence public.system_metrics_id_seq from service_role;
{{ drop_rls(
  'public.system_metrics',
  'public.analytics_daily') }}
