-- Undo 0200_tenancy_types.
drop type public.invitation_status;
drop type public.subscription_status;
drop type public.user_role;
