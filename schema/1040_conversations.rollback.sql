-- Why: undoes 1040_conversations.sql.
drop trigger users_clear_conversations_references on public.users;
drop table public.conversations;
drop function private.conversations_guard_transition();
drop function private.conversation_transition_allowed(public.conversation_status, public.conversation_status);
drop function private.conversations_check_assignee(uuid, uuid, uuid);
