-- Why: undoes 1500_chatbot_policies.sql (policies, grants, RLS of the chatbot domain tables).
-- Every policy of these tables goes (each table's policies are all created by this
-- migration), then the grants and the RLS flags (policies/_rls.sql).
{% from 'policies/_rls.sql' import drop_rls -%}
{{ drop_rls(
  'public.chatbot_operators',
  'public.chatbots',
  'public.chatbot_templates') }}
