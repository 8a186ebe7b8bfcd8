-- Why: undoes 1500_chatbot_policies.sql (policies, grants, RLS of the chatbot domain tables).
{% from 'policies/_read_only.sql' import drop_read_only_when_inactive %}
{{ drop_read_only_when_inactive('public.chatbot_operators') }}
{{ drop_read_only_when_inactive('public.chatbots') }}

drop policy delete_as_supervisor on public.chatbot_operators;
drop policy insert_as_supervisor on public.chatbot_operators;
drop policy select_visible on public.chatbot_operators;
revoke all on table public.chatbot_operators from authenticated, service_role;
alter table public.chatbot_operators no force row level security;
alter table public.chatbot_operators disable row level security;

drop policy delete_as_admin on public.chatbots;
drop policy update_as_admin on public.chatbots;
drop policy insert_as_admin on public.chatbots;
drop policy select_visible on public.chatbots;
revoke all on table public.chatbots from authenticated, service_role;
alter table public.chatbots no force row level security;
alter table public.chatbots disable row level security;

drop policy select_all on public.chatbot_templates;
revoke all on table public.chatbot_templates from authenticated, service_role;
alter table public.chatbot_templates no force row level security;
alter table public.chatbot_templates disable row level security;
