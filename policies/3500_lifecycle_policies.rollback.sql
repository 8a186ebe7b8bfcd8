-- Why: undoes 3500_lifecycle_policies.sql (policies, RLS flags and grants of the lifecycle tables).
-- Every policy of these tables goes (each table's policies are all created by this
-- migration), then the grants and the RLS flags (policies/_rls.sql).
{% from 'policies/_rls.sql' import drop_rls -%}
revoke all on sequence private.job_runs_id_seq from service_role;
{{ drop_rls(
  'private.cold_exports',
  'private.job_runs',
  'public.legal_holds',
  'archive.analytics_archived',
  'archive.integration_logs_archived',
  'archive.knowledge_queries_archived',
  'archive.hitl_escalations_archived',
  'archive.message_reactions_archived',
  'archive.messages_archived',
  'archive.conversations_archived') }}
