-- neurant: profile citus
-- Profile citus only (the other profiles do not list this migration): the global lookups
-- a Citus cluster needs outside the tables distributed by company_id (docs/scale-out.md).
--
-- private.memberships: auth identity -> (company, member, role, active), a reference
-- table (one copy on every node), so that the context helpers (functions/0300) read it
-- from inside a shard without a distributed query. It also carries the global rule
-- "one membership per auth identity" (its primary key), which public.users can no longer
-- hold on Citus (users_auth_user_id_key includes company_id there).
{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
{% from 'policies/_rls.sql' import rls -%}
create table private.memberships (
  auth_user_id uuid not null,
  company_id uuid not null,
  id uuid not null,
  role public.user_role not null,
  is_active boolean not null,
  constraint memberships_pkey primary key (auth_user_id),
  constraint memberships_company_id_id_key unique (company_id, id)
);
comment on table private.memberships is
  'Profile citus: a copy of (auth_user_id, company_id, id, role, is_active) of every public.users row, written before it by the membership RPCs and the backend (service_role), checked by users_membership_copy; a reference table, read by the context helpers from any shard. Its primary key is the global one-membership-per-identity rule.'{{ doctor_notes('private.memberships') }};
comment on column private.memberships.auth_user_id is 'The member''s auth.users.id (auth.uid()); one membership per identity.';
comment on column private.memberships.company_id is 'The member''s company (public.users.company_id).';
comment on column private.memberships.id is 'The member''s public.users.id.';
comment on column private.memberships.role is 'The member''s role (public.users.role).';
comment on column private.memberships.is_active is 'Whether the membership is active (public.users.is_active).';
comment on constraint memberships_pkey on private.memberships is
  'One company membership per auth identity (users_auth_user_id_key on Citus includes company_id).'{{ doctor_notes('private.memberships', 'memberships_pkey') }};
{{ rls('private.memberships', with_read_only=false) }}
-- Its policies, the read-only ones included: policies/0580_citus_lookup_policies.sql.

{{ tenant_guard('private.memberships') }}

-- public.users_auth_user_fkey needs an index leading with auth_user_id once the unique key
-- includes company_id.
create index users_auth_user_id_idx on public.users (auth_user_id);
comment on index public.users_auth_user_id_idx is
  'Profile citus: the index of users_auth_user_fkey (the unique key users_auth_user_id_key leads with company_id there).';

-- The copy is written only by coordinator-side code, before the public.users row it
-- mirrors, in the same transaction: the membership RPCs (functions/0320, 0330, 0340) and
-- the backend (service_role, private.memberships first). No trigger of public.users writes
-- it: on a Citus cluster that trigger would run on a shard of the distributed users and
-- write a reference table, the shape issue 12 saw fail. Instead a BEFORE trigger (a read of
-- the reference table from the shard, the shape issue 12 saw work) refuses every write of
-- public.users whose membership columns do not match the copy (docs/scale-out.md).
create function private.users_membership_copy() returns trigger
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set citus.allow_nested_distributed_execution = on
as $$
begin
  if tg_op = 'DELETE' then
    if exists (select 1 from private.memberships m where m.company_id = old.company_id and m.id = old.id) then
      raise exception using
        errcode = '42501',
        message = 'a member is removed only through public.remove_member on profile citus',
        hint = 'Call public.remove_member(user_id); the backend (service_role) deletes the member''s private.memberships row first, in the same transaction (before deleting the company, all of its rows).';
    end if;
    return old;
  end if;
  if tg_op = 'UPDATE'
     and (new.auth_user_id, new.company_id, new.id, new.role, new.is_active)
         is not distinct from (old.auth_user_id, old.company_id, old.id, old.role, old.is_active) then
    return new; -- name, profile and bookkeeping columns: no membership change
  end if;
  if not exists (select 1 from private.memberships m
                  where m.auth_user_id = new.auth_user_id and m.company_id = new.company_id and m.id = new.id
                    and m.role = new.role and m.is_active = new.is_active) then
    if tg_op = 'INSERT' then
      raise exception using
        errcode = '42501',
        message = 'a member joins only through create_company_with_owner or accept_invitation on profile citus',
        hint = 'Call public.accept_invitation(token) or public.create_company_with_owner(...); the backend (service_role) inserts the private.memberships row first, with the same id, in the same transaction.';
    end if;
    raise exception using
      errcode = '42501',
      message = 'the role and active state of a member change only through the membership RPCs on profile citus',
      hint = 'Call public.set_member_role(user_id, role), public.set_member_active(user_id, is_active) or public.transfer_ownership(user_id); the backend (service_role) updates private.memberships first, in the same transaction.';
  end if;
  return new;
end
$$;
comment on function private.users_membership_copy() is
  'Trigger function (before insert/update/delete on public.users, profile citus): the membership columns (auth_user_id, company_id, id, role, is_active) of an inserted or changed row must equal its private.memberships row, and a deleted member must have none left (42501 with a hint naming the RPC otherwise). It only reads the reference table; the RPCs and the backend write the copy first. Updates that leave those columns alone (full_name, last_seen_at) are not checked.';
revoke execute on function private.users_membership_copy() from public, anon, authenticated;

create trigger users_membership_copy
  before insert or update or delete on public.users
  for each row execute function private.users_membership_copy();
comment on trigger users_membership_copy on public.users is
  'Profile citus: public.users never differs from private.memberships; fires after users_guard_update and users_guard_grant (name order), so the role-hierarchy errors come first.';

-- The plan a member may read (subscription_plans.select_own_plan) without a subquery
-- in the policy: companies is distributed, so the helper carries the nested-execution
-- setting (the lookup is one row of the caller's company, colocated). It runs as its
-- caller: a definer reading companies after the member's own write in the same
-- transaction fails with 25001 (issue 19); the member reads its own company under RLS.
create function private.get_user_plan_code() returns text
  language plpgsql stable security invoker
  set search_path = pg_catalog, pg_temp
  set citus.allow_nested_distributed_execution = on
as $$
begin
  -- plpgsql: get_user_company_id() is created later (functions/0300)
  return (select c.subscription_plan from public.companies c where c.id = private.get_user_company_id());
end
$$;
comment on function private.get_user_plan_code() is
  'Profile citus: the subscription plan code of the caller''s company (active members), null otherwise; the policy subscription_plans.select_own_plan calls it instead of a subquery.';
revoke execute on function private.get_user_plan_code() from public, anon;
grant execute on function private.get_user_plan_code() to authenticated, service_role;

-- TG_TABLE_NAME inside a shard trigger is the shard's name (users_102008): the citus
-- rendering replaces it with this (runner/neurant_db/citus_render.py).
create function private.logical_table_name(p_relid oid) returns name
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select case
           when c.relname ~ '_[0-9]+$'
            and exists (select 1 from pg_catalog.pg_class p
                         where p.relnamespace = c.relnamespace
                           and p.relname = regexp_replace(c.relname, '_[0-9]+$', ''))
             then regexp_replace(c.relname, '_[0-9]+$', '')::name
           else c.relname
         end
    from pg_catalog.pg_class c
   where c.oid = p_relid
$$;
comment on function private.logical_table_name(oid) is
  'Profile citus: the name of the table a trigger fires on, without the _<shardid> suffix a Citus shard carries (its shell table exists beside it on every node with metadata); the relation''s own name otherwise.';
revoke execute on function private.logical_table_name(oid) from public;
grant execute on function private.logical_table_name(oid) to authenticated, service_role;
