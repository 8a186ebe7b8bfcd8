-- neurant: profile citus
-- Profile citus only (the other profiles do not list this migration): the membership
-- changes a member makes with a direct update or delete of public.users elsewhere. On
-- Citus the membership copy private.memberships (schema/0150, a reference table) is
-- written only by coordinator-side code, before the public.users row it mirrors, and
-- users_membership_copy refuses a direct write of the membership columns; these RPCs
-- write both in one transaction (docs/scale-out.md, docs/services.md section 11).
--
-- They run as definer, so users_guard_update (schema/0140) trusts them like any code
-- past RLS: private.member_to_change repeats its rules and those of the policies
-- update_lower_rank / delete_lower_rank (policies/0500) for the caller. The other rules
-- of public.users still fire on the write: one owner per company
-- (users_one_owner_per_company_key, users_require_owner_*), the tenant guard, the legal
-- holds, the audit trail.

{% from 'functions/_rpc.sql' import exposed_rpc -%}
create function private.member_to_change(p_user_id uuid, p_new_role public.user_role)
returns private.memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller private.memberships%rowtype;
  v_target private.memberships%rowtype;
begin
  select * into v_caller from private.memberships m where m.auth_user_id = auth.uid() and m.is_active;
  if not found or v_caller.role not in ('owner', 'administrador') then
    raise exception using
      errcode = '42501',
      message = 'only an owner or administrador can change or remove members',
      hint = 'Ask an owner or administrador of your company.';
  end if;
  select * into v_target from private.memberships m
   where m.company_id = v_caller.company_id and m.id = p_user_id
     for update;
  if not found then
    raise exception using
      errcode = '22023',
      message = 'member not found',
      hint = 'Pass the public.users.id of a member of your company.';
  end if;
  if v_target.id = v_caller.id then
    raise exception using
      errcode = '42501',
      message = 'you cannot change your own role, company or active state',
      hint = 'Use transfer_ownership to hand over ownership; other changes are made by a higher-ranked member.';
  end if;
  if public.role_rank(v_target.role) >= public.role_rank(v_caller.role) then
    raise exception using
      errcode = '42501',
      message = format('a %s cannot change a member of rank %s', v_caller.role, v_target.role),
      hint = 'Only members of a lower rank can be changed.';
  end if;
  if p_new_role is not null and public.role_rank(p_new_role) >= public.role_rank(v_caller.role) then
    raise exception using
      errcode = '42501',
      message = format('a %s cannot grant the role %s (at or above their own)', v_caller.role, p_new_role),
      hint = 'Use transfer_ownership to hand over ownership; only roles below your own can be granted.';
  end if;
  return v_target;
end
$$;
comment on function private.member_to_change(uuid, public.user_role) is
  'Profile citus: the membership copy of member p_user_id, locked, after checking that the caller (an active owner or administrador) may change it: same company (22023 member not found otherwise, as for a member that does not exist), not themselves, of a lower rank, and p_new_role (when given) below their own (42501 with the messages of users_guard_update). Called by the membership RPCs only.';
revoke execute on function private.member_to_change(uuid, public.user_role) from public, anon, authenticated;

-- The write both RPCs below share: the copy first, then the row of public.users (the
-- shard trigger users_membership_copy compares the row with the copy). A null argument
-- leaves that column as it is (an unchanged value is neither audited nor re-checked).
create function private.write_member_change(p_target private.memberships, p_role public.user_role,
                                            p_is_active boolean) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set citus.multi_shard_modify_mode = 'sequential'
as $$
declare
  v_updated integer;
begin
  perform private.require_company_writable(p_target.company_id);
  update private.memberships m
     set role = coalesce(p_role, m.role), is_active = coalesce(p_is_active, m.is_active)
   where m.company_id = p_target.company_id and m.id = p_target.id;
  update public.users u
     set role = coalesce(p_role, u.role), is_active = coalesce(p_is_active, u.is_active)
   where u.company_id = p_target.company_id and u.id = p_target.id;
  get diagnostics v_updated = row_count;
  if v_updated <> 1 then
    raise exception using errcode = 'P0001', message = 'member change failed';
  end if;
end
$$;
comment on function private.write_member_change(private.memberships, public.user_role, boolean) is
  'Profile citus: writes a member''s new role and/or active flag (null = unchanged) into private.memberships, then public.users, after the company-writable check (NA002). Called by set_member_role and set_member_active only, with a target private.member_to_change returned.';
revoke execute on function private.write_member_change(private.memberships, public.user_role, boolean)
  from public, anon, authenticated;

create function public.set_member_role(p_user_id uuid, p_role public.user_role) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set citus.multi_shard_modify_mode = 'sequential'
as $$
begin
  if p_role is null then
    raise exception using errcode = '22023', message = 'a role is required', hint = 'Pass one of operador, supervisor, administrador.';
  end if;
  perform private.write_member_change(private.member_to_change(p_user_id, p_role), p_role, null);
end
$$;
comment on function public.set_member_role(uuid, public.user_role) is
  'RPC (profile citus): an owner or administrador changes the role of a member of lower rank (p_user_id = public.users.id) to a role below their own; private.memberships and public.users change together, so the member''s next statement runs with the new role. Errors: 42501 caller not owner/administrador, own row, member not of lower rank, role at or above the caller''s (ownership moves with transfer_ownership); NA002 company read-only; 22023 no role, member not found.'{{ exposed_rpc() }};

create function public.set_member_active(p_user_id uuid, p_is_active boolean) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set citus.multi_shard_modify_mode = 'sequential'
as $$
begin
  if p_is_active is null then
    raise exception using errcode = '22023', message = 'is_active is required', hint = 'Pass true to activate, false to deactivate.';
  end if;
  perform private.write_member_change(private.member_to_change(p_user_id, null), null, p_is_active);
end
$$;
comment on function public.set_member_active(uuid, boolean) is
  'RPC (profile citus): an owner or administrador activates or deactivates a member of lower rank (p_user_id = public.users.id); an inactive member keeps the seat and gets no access from its next statement. Errors: 42501 caller not owner/administrador, own row, member not of lower rank; NA002 company read-only; 22023 no value, member not found.'{{ exposed_rpc() }};

create function public.remove_member(p_user_id uuid) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set citus.multi_shard_modify_mode = 'sequential'
as $$
declare
  v_target private.memberships%rowtype;
  v_deleted integer;
begin
  v_target := private.member_to_change(p_user_id, null);
  perform private.require_company_writable(v_target.company_id);
  delete from private.memberships m
   where m.company_id = v_target.company_id and m.id = v_target.id;
  delete from public.users u
   where u.company_id = v_target.company_id and u.id = v_target.id;
  get diagnostics v_deleted = row_count;
  if v_deleted <> 1 then
    raise exception using errcode = 'P0001', message = 'member removal failed';
  end if;
end
$$;
comment on function public.remove_member(uuid) is
  'RPC (profile citus): an owner or administrador removes a member of lower rank (p_user_id = public.users.id): the membership copy and the public.users row go together (its assignments with it; references to it are cleared), so the identity reads nothing from its next statement and may join a company again. Errors: 42501 caller not owner/administrador, own row, member not of lower rank, a legal hold naming the member; NA002 company read-only; 22023 member not found.'{{ exposed_rpc() }};

revoke execute on function public.set_member_role(uuid, public.user_role) from public, anon;
revoke execute on function public.set_member_active(uuid, boolean) from public, anon;
revoke execute on function public.remove_member(uuid) from public, anon;
grant execute on function public.set_member_role(uuid, public.user_role) to authenticated;
grant execute on function public.set_member_active(uuid, boolean) to authenticated;
grant execute on function public.remove_member(uuid) to authenticated;
