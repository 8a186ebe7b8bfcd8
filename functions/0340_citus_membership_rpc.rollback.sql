-- Why: undoes 0340_citus_membership_rpc.sql (profile citus only, like it).
drop function public.remove_member(uuid);
drop function public.set_member_active(uuid, boolean);
drop function public.set_member_role(uuid, public.user_role);
drop function private.write_member_change(private.memberships, public.user_role, boolean);
drop function private.member_to_change(uuid, public.user_role);
