-- Why: undoes 1030_chatbot_operators.sql.
drop table public.chatbot_operators;
drop function private.chatbot_operators_before_write();
