-- Why: undoes 1020_chatbots.sql. Dropping the table does not re-run the delete trigger, so
-- the live counter is reset explicitly to keep companies consistent.
drop trigger users_clear_chatbots_references on public.users;
drop table public.chatbots;
drop function private.chatbots_count_quota();
drop function private.chatbots_before_write();
update public.companies set current_chatbot_count = 0 where current_chatbot_count <> 0;
