-- Why: undoes 1080_message_reactions.sql.
drop trigger users_clear_message_reactions_references on public.users;
drop table public.message_reactions;
drop function private.message_reactions_after_insert();
drop function private.message_reactions_before_insert();
