-- Why: undoes 1510_conversation_policies.sql (policies, grants, RLS of the conversation domain tables).
{% from 'policies/_read_only.sql' import drop_read_only_when_inactive %}
{{ drop_read_only_when_inactive('public.company_message_usage') }}
{{ drop_read_only_when_inactive('public.hitl_escalations') }}
{{ drop_read_only_when_inactive('public.message_reactions') }}
{{ drop_read_only_when_inactive('public.messages') }}
{{ drop_read_only_when_inactive('public.conversations') }}


drop policy select_as_supervisor on public.company_message_usage;
revoke all on table public.company_message_usage from authenticated, service_role;
alter table public.company_message_usage no force row level security;
alter table public.company_message_usage disable row level security;

drop policy select_visible on public.hitl_escalations;
revoke all on table public.hitl_escalations from authenticated, service_role;
alter table public.hitl_escalations no force row level security;
alter table public.hitl_escalations disable row level security;

drop policy select_visible on public.message_reactions;
drop policy insert_visible on public.message_reactions;
drop policy delete_as_admin on public.message_reactions;
revoke all on table public.message_reactions from authenticated, service_role;
alter table public.message_reactions no force row level security;
alter table public.message_reactions disable row level security;

drop policy select_visible on public.messages;
drop policy insert_operator_message on public.messages;
drop policy delete_as_admin on public.messages;
revoke all on table public.messages from authenticated, service_role;
alter table public.messages no force row level security;
alter table public.messages disable row level security;

drop policy select_visible on public.conversations;
drop policy insert_as_supervisor on public.conversations;
drop policy update_visible on public.conversations;
drop policy delete_as_admin on public.conversations;
revoke all on table public.conversations from authenticated, service_role;
alter table public.conversations no force row level security;
alter table public.conversations disable row level security;
