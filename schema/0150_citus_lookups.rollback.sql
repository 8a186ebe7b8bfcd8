-- Why: undoes 0150_citus_lookups.sql (profile citus only, like it).
drop function private.logical_table_name(oid);
drop function private.get_user_plan_code();
drop trigger users_membership_copy on public.users;
drop function private.users_membership_copy();
drop index public.users_auth_user_id_idx;
drop table private.memberships;
