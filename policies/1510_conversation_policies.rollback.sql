-- Why: undoes 1510_conversation_policies.sql (policies, grants, RLS of the conversation domain tables).
-- Every policy of these tables goes (each table's policies are all created by this
-- migration), then the grants and the RLS flags (policies/_rls.sql).
{% from 'policies/_rls.sql' import drop_rls -%}
{{ drop_rls(
  'public.company_message_usage',
  'public.hitl_escalations',
  'public.message_reactions',
  'public.messages',
  'public.conversations') }}
