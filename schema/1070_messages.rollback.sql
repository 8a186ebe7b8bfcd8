-- Why: undoes 1070_messages.sql.
drop table public.messages;
drop function private.messages_after_insert();
drop function private.messages_before_insert();
