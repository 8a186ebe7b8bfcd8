-- Why: undoes 1090_user_reference_cleanup.sql.
drop trigger users_clear_chatbot_references on public.users;
drop function private.users_clear_chatbot_references();
