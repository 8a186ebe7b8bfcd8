-- Why: undoes 0500_tenancy_policies.sql: drop the policies, disable RLS and take back the
-- grants (tables return to their owner-only state).
-- Every policy of these tables goes (each table's policies are all created by this
-- migration), then the grants and the RLS flags (policies/_rls.sql).
{% from 'policies/_rls.sql' import drop_rls -%}
{{ drop_rls(
  'public.audit_logs',
  'public.user_invitations',
  'public.users',
  'public.companies',
  'public.subscription_plans') }}
