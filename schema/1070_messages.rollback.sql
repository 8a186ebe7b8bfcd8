-- Why: undoes 1070_messages.sql.
drop trigger users_clear_messages_references on public.users;
drop table public.messages;
drop function private.messages_refuse_conversation(uuid, uuid);
drop function private.messages_before_insert();
drop function private.messages_after_insert();
drop function private.messages_bookkeeping(private.stored_message[]);
drop type private.stored_message;
