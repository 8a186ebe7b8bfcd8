-- Why: undoes 1030_chatbot_operators.
drop table public.chatbot_operators;
drop function private.chatbot_operators_before_write();
