-- Business rules of the tenancy domain enforced by the database itself
-- (immediate triggers, never deferred): plan/billing columns only for the
-- backend, role hierarchy on member changes, exactly one owner per company,
-- exact live counters for members and pending invitations, invitation life cycle.

-- companies ------------------------------------------------------------------

create function private.companies_guard_update() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.id is distinct from old.id then
    raise exception using errcode = '22023', message = 'the id of a company cannot change';
  end if;
  if private.caller_is_subject_to_rls()
     and (to_jsonb(new) - array['name', 'industry', 'updated_at'])
       is distinct from (to_jsonb(old) - array['name', 'industry', 'updated_at']) then
    raise exception using
      errcode = '42501',
      message = 'only the company profile (name, industry) can be changed by members',
      hint = 'Plan, billing and usage counters are managed by the backend (service_role).';
  end if;
  return new;
end
$$;
comment on function private.companies_guard_update() is
  'Trigger function (before update on companies): end users (roles subject to RLS) may change only the profile columns name and industry; the id never changes. Defence in depth behind the column grants.';

create trigger companies_guard_update
  before update on public.companies
  for each row execute function private.companies_guard_update();
comment on trigger companies_guard_update on public.companies is
  'Rule: members change only the profile; plan, billing and counters belong to service_role.';

-- users ----------------------------------------------------------------------

create function private.users_guard_update() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_caller_id uuid;
  v_caller_role public.user_role;
begin
  -- (company_id never reaches this trigger changed: users_0_tenant_key refuses it first)
  if not private.caller_is_subject_to_rls() then
    return new;
  end if;

  v_caller_id := private.get_current_user_id();
  v_caller_role := private.get_user_role();
  if new.auth_user_id is distinct from old.auth_user_id or new.email is distinct from old.email then
    raise exception using
      errcode = '42501',
      message = 'the identity (auth_user_id, email) of a member cannot be changed',
      hint = 'Remove the member and send a new invitation.';
  end if;
  if v_caller_id is not null and old.id = v_caller_id then
    if (to_jsonb(new) - array['full_name', 'last_seen_at', 'updated_at', 'is_owner'])
       is distinct from (to_jsonb(old) - array['full_name', 'last_seen_at', 'updated_at', 'is_owner']) then
      raise exception using
        errcode = '42501',
        message = 'you cannot change your own role, company or active state',
        hint = 'Use transfer_ownership to hand over ownership; other changes are made by a higher-ranked member.';
    end if;
    return new;
  end if;
  if v_caller_role is null or public.role_rank(old.role) >= public.role_rank(v_caller_role) then
    raise exception using
      errcode = '42501',
      message = format('a %s cannot change a member of rank %s', coalesce(v_caller_role::text, 'non-member'), old.role),
      hint = 'Only members of a lower rank can be changed.';
  end if;
  if new.role is distinct from old.role and public.role_rank(new.role) >= public.role_rank(v_caller_role) then
    raise exception using
      errcode = '42501',
      message = format('a %s cannot grant the role %s (at or above their own)', v_caller_role, new.role),
      hint = 'Use transfer_ownership to hand over ownership; only roles below your own can be granted.';
  end if;
  return new;
end
$$;
comment on function private.users_guard_update() is
  'Trigger function (before update on users; company_id never changes, users_0_tenant_key): end users may change only their own full_name, may change members of lower rank only, and never grant a role at or above their own (42501, hint: use transfer_ownership).';

create trigger users_guard_update
  before update on public.users
  for each row execute function private.users_guard_update();
comment on trigger users_guard_update on public.users is
  'Rule: nobody changes their own role/company/active state or grants a role at or above their own.';

-- The grant ceiling, for every path a role reaches a member (an invitation created,
-- an invitation accepted; role changes are users_guard_update above), whoever writes
-- the row, service_role included: the granting member must be active and rank above
-- the role granted, at the moment of the grant. RLS (policies/0500) and the RPCs
-- (functions/0330) only decide who may call; this is where the ceiling holds.
create function private.guard_role_grant() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_grantor_role public.user_role;
begin
  if new.invited_by is null then
    return new;  -- no member grants it: a company's first owner, or the backend
  end if;
  select case when g.is_active then g.role end into v_grantor_role
    from public.users g
   where g.company_id = new.company_id and g.id = new.invited_by;
  if not found then
    return new;  -- not a member of this company: the foreign key refuses it (23503)
  end if;
  if v_grantor_role is null or public.role_rank(new.role) >= public.role_rank(v_grantor_role) then
    if tg_table_name = 'users' then
      raise exception using
        errcode = '42501',
        message = 'the member who sent this invitation can no longer grant this role',
        hint = 'Ask an owner or administrador for a new invitation.';
    end if;
    raise exception using
      errcode = '42501',
      message = format('a %s cannot invite a %s: the role must be below your own',
                       coalesce(v_grantor_role::text, 'inactive member'), new.role),
      hint = 'Invite a lower role; ownership is handed over with transfer_ownership.';
  end if;
  return new;
end
$$;
comment on function private.guard_role_grant() is
  'Trigger function (before insert on user_invitations and users): nobody grants a role at or above their own. The inviting member (invited_by) must be active and outrank the role, when the invitation is created and again when it is accepted (a sender since removed, deactivated or demoted can no longer hand it out); 42501 otherwise. Rows without invited_by (first owner, backend) are not grants by a member.';

create trigger user_invitations_guard_grant
  before insert on public.user_invitations
  for each row execute function private.guard_role_grant();
comment on trigger user_invitations_guard_grant on public.user_invitations is
  'Rule: an invitation grants only a role below the inviting member''s own.';
create trigger users_guard_grant
  before insert on public.users
  for each row execute function private.guard_role_grant();
comment on trigger users_guard_grant on public.users is
  'Rule: a member joins through an invitation only while its sender still outranks the role.';

create function private.clear_user_reference() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_column text;
begin
  -- When the whole company is being deleted everything cascades: nothing to clear (an
  -- UPDATE here would re-check its FKs against the company already gone).
  if not exists (select 1 from public.companies c where c.id = old.company_id) then
    return old;
  end if;
  -- tg_argv[0]: the referencing table (schema-qualified); tg_argv[1..]: its columns that
  -- point at public.users (company_id, id). Both come from the trigger definition, never
  -- from the caller.
  foreach v_column in array tg_argv[1:] loop
    execute pg_catalog.format('update %s set %I = null where company_id = $1 and %I = $2',
                              tg_argv[0]::regclass, v_column, v_column)
      using old.company_id, old.id;
  end loop;
  return old;
end
$$;
comment on function private.clear_user_reference() is
  'Trigger function (before delete on public.users, one trigger per referencing table, created in that table''s file: users_clear_<table>_references): sets the table''s columns named in the trigger arguments to null where they point at the removed member, so history stays while the member goes (company-scoped FKs cannot use ON DELETE SET NULL; CONVENTIONS). Limitation: deleting an inviter and a member they invited in the same statement raises 27000; delete them in two statements.';

create trigger users_clear_users_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.users', 'invited_by');
comment on trigger users_clear_users_references on public.users is
  'Clears users.invited_by pointing at a removed member.';
create trigger users_clear_user_invitations_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.user_invitations', 'invited_by', 'accepted_by', 'revoked_by');
comment on trigger users_clear_user_invitations_references on public.users is
  'Clears user_invitations.invited_by / accepted_by / revoked_by pointing at a removed member.';

create function private.users_count_members() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    perform private.consume_quota(new.company_id, 'current_user_count', 1);
    return new;
  end if;
  perform private.consume_quota(old.company_id, 'current_user_count', -1);
  return old;
end
$$;
comment on function private.users_count_members() is
  'Trigger function (after insert/delete on users): keeps companies.current_user_count exact and enforces the plan''s max_users (NA001 "user limit reached for plan X: n of m").';

create trigger users_count_members
  after insert or delete on public.users
  for each row execute function private.users_count_members();
comment on trigger users_count_members on public.users is
  'Rule: the user limit of the plan cannot be exceeded; the member counter stays exact.';

create function private.users_require_owner() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_company_id uuid;
begin{% if profile == 'citus' %}
  -- Citus: a row trigger per owner row changed (WHEN), fired after the statement like every
  -- after-row trigger; a shard's statement trigger cannot hand its transition table to the
  -- distributed queries below (XX000 "could not find named tuplestore", issue 19).
  if exists (select 1 from public.companies c where c.id = old.company_id)
     and not exists (select 1 from public.users u where u.company_id = old.company_id and u.role = 'owner') then
    v_company_id := old.company_id;
  end if;{% else %}
  select o.company_id into v_company_id
    from (select distinct company_id from old_rows where role = 'owner') o
   where exists (select 1 from public.companies c where c.id = o.company_id)
     and not exists (select 1 from public.users u where u.company_id = o.company_id and u.role = 'owner')
   limit 1;{% endif %}
  if v_company_id is not null then
    raise exception using
      errcode = '42501',
      message = format('company %s would be left without an owner', v_company_id),
      hint = 'Use transfer_ownership to hand over ownership first, or delete the company.';
  end if;
  return null;
end
$$;
comment on function private.users_require_owner() is
  'Trigger function (after update / after delete on users, for each statement{{ '; profile citus: for each owner row, after the statement' if profile == 'citus' }}): a company that still exists never ends a statement without an owner (42501).';

create trigger users_require_owner_on_update
  after update on public.users{% if profile == 'citus' %}
  for each row when (old.role = 'owner'){% else %}
  referencing old table as old_rows
  for each statement{% endif %} execute function private.users_require_owner();
comment on trigger users_require_owner_on_update on public.users is
  'Rule: a company always has exactly one owner (never zero after an update).';

create trigger users_require_owner_on_delete
  after delete on public.users{% if profile == 'citus' %}
  for each row when (old.role = 'owner'){% else %}
  referencing old table as old_rows
  for each statement{% endif %} execute function private.users_require_owner();
comment on trigger users_require_owner_on_delete on public.users is
  'Rule: the owner cannot be deleted while the company exists.';

-- user_invitations -----------------------------------------------------------

create function private.user_invitations_guard_update() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.email is distinct from old.email
     or new.role is distinct from old.role or new.token_hash is distinct from old.token_hash then
    raise exception using
      errcode = '22023',
      message = 'the company, email, role and token of an invitation cannot change',
      hint = 'Revoke it and create a new invitation.';
  end if;
  if old.status <> 'pending' and new.status is distinct from old.status then
    raise exception using
      errcode = '22023',
      message = format('invitation is already %s', old.status),
      hint = 'Accepted, revoked and expired invitations are final; create a new invitation.';
  end if;
  return new;
end
$$;
comment on function private.user_invitations_guard_update() is
  'Trigger function (before update on user_invitations): the email, role and token hash never change (the company neither: user_invitations_0_tenant_key); only a pending invitation changes status (accepted, revoked and expired are final).';

create trigger user_invitations_guard_update
  before update on public.user_invitations
  for each row execute function private.user_invitations_guard_update();
comment on trigger user_invitations_guard_update on public.user_invitations is
  'Rule: an invitation is single use; final states never change.';

create function private.user_invitations_count_pending() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_delta integer;
  v_company_id uuid;
  v_plan text;
  v_users bigint;
  v_pending bigint;
  v_max_users bigint;
begin
  v_delta := case when tg_op <> 'DELETE' and new.status = 'pending' then 1 else 0 end
       - case when tg_op <> 'INSERT' and old.status = 'pending' then 1 else 0 end;
  v_company_id := case when tg_op = 'DELETE' then old.company_id else new.company_id end;
  if v_delta = 0 then
    return null;
  end if;
  perform private.consume_quota(v_company_id, 'current_pending_invitation_count', v_delta);
  if v_delta > 0 then
    -- A pending invitation holds a seat: members + pending <= max_users.
{%- if profile == 'citus' %}
    -- Citus: the company, then its plan's limit (a statement of a delegated RPC may not join
    -- a distributed table with a reference table: docs/scale-out.md, "Definer RPCs").
    select c.subscription_plan, c.current_user_count, c.current_pending_invitation_count
      into v_plan, v_users, v_pending
      from public.companies c
     where c.id = v_company_id;
    select p.max_users into v_max_users from public.subscription_plans p where p.code = v_plan;
{%- else %}
    select c.subscription_plan, c.current_user_count, c.current_pending_invitation_count, p.max_users
      into v_plan, v_users, v_pending, v_max_users
      from public.companies c
      join public.subscription_plans p on p.code = c.subscription_plan
     where c.id = v_company_id;
{%- endif %}
    if v_max_users is not null and v_users + v_pending > v_max_users then
      raise exception using
        errcode = 'NA001',
        message = format('user limit reached for plan %s: %s of %s (%s members + %s pending invitations)',
                 v_plan, v_users + v_pending - 1, v_max_users, v_users, v_pending - 1),
        hint = 'Upgrade the plan, remove a user or revoke a pending invitation.';
    end if;
  end if;
  return null;
end
$$;
comment on function private.user_invitations_count_pending() is
  'Trigger function (after insert/update/delete on user_invitations): keeps companies.current_pending_invitation_count exact, enforces max_pending_invitations and that members + pending invitations never exceed max_users (NA001).';

create trigger user_invitations_count_pending
  after insert or update of status or delete on public.user_invitations
  for each row execute function private.user_invitations_count_pending();
comment on trigger user_invitations_count_pending on public.user_invitations is
  'Rule: pending invitations are limited by the plan and hold a seat of max_users; the counter stays exact.';

revoke execute on function
  private.companies_guard_update(), private.users_guard_update(), private.guard_role_grant(), private.clear_user_reference(),
  private.users_count_members(), private.users_require_owner(),
  private.user_invitations_guard_update(), private.user_invitations_count_pending()
  from public;
