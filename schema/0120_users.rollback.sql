-- Undo 0240_users.
drop table public.users;
