-- Why: undoes 0030_tenancy_types.sql.
drop type public.invitation_status;
drop type public.subscription_status;
drop type public.user_role;
