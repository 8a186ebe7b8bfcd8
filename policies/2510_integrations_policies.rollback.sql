-- Why: undoes 2510_integrations_policies.sql (policies, grants, RLS flags).
-- Every policy of these tables goes (each table's policies are all created by this
-- migration), then the grants and the RLS flags (policies/_rls.sql).
{% from 'policies/_rls.sql' import drop_rls -%}
{{ drop_rls(
  'public.integration_logs',
  'private.integration_credentials',
  'public.integrations') }}
