-- Why: undoes 0130_user_invitations.sql.
drop table public.user_invitations;
