-- Why: undoes 0120_users.sql.
drop table public.users;
