-- Why: undoes 0140_tenancy_rules.sql.
drop trigger user_invitations_count_pending on public.user_invitations;
drop function private.user_invitations_count_pending();
drop trigger user_invitations_guard_update on public.user_invitations;
drop function private.user_invitations_guard_update();
drop trigger users_require_owner_on_delete on public.users;
drop trigger users_require_owner_on_update on public.users;
drop function private.users_require_owner();
drop trigger users_count_members on public.users;
drop function private.users_count_members();
drop trigger users_clear_user_invitations_references on public.users;
drop trigger users_clear_users_references on public.users;
drop function private.clear_user_reference();
drop trigger users_guard_update on public.users;
drop function private.users_guard_update();
drop trigger companies_guard_update on public.companies;
drop function private.companies_guard_update();
