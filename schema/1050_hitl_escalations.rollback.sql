-- Why: undoes 1050_hitl_escalations.sql.
drop trigger users_clear_hitl_escalations_references on public.users;
drop trigger conversations_log_escalation on public.conversations;
drop function private.conversations_log_escalation();
drop function private.escalate_conversation(uuid, uuid, public.hitl_escalation_reason, text);
drop table public.hitl_escalations;
