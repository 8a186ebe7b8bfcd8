-- Undo 0250_user_invitations.
drop table public.user_invitations;
