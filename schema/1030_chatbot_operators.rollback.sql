-- Why: undoes 1030_chatbot_operators.sql.
drop trigger users_clear_chatbot_operators_references on public.users;
drop table public.chatbot_operators;
drop function private.chatbot_operators_before_write();
