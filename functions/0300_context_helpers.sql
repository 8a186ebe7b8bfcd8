-- Tenant-context helpers used by every RLS policy: who is the caller inside
-- public.users, in which company, with which role. Each is one indexed lookup
-- (users_auth_user_id_key) and is meant to be wrapped in (select ...) so it
-- runs once per statement.

-- The helpers are security definer so that they can read public.users under
-- FORCE ROW LEVEL SECURITY without recursing into its policies. That needs an
-- owner that bypasses RLS (superuser, or Supabase's postgres role, which has
-- BYPASSRLS); refuse to install them otherwise instead of returning nulls.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles
          where rolname = current_user and (rolsuper or rolbypassrls)) then
    raise exception using
      errcode = '42501',
      message = format('role %I must be superuser or have BYPASSRLS to own the tenant-context helpers', current_user),
      hint = 'Apply the migrations as the database owner role (postgres on Supabase).';
  end if;
end
$$;

create function public.role_rank(p_role public.user_role) returns integer
  language sql immutable parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select case p_role
    when 'owner' then 4
    when 'administrador' then 3
    when 'supervisor' then 2
    when 'operador' then 1
  end
$$;
comment on function public.role_rank(public.user_role) is
  'Rank of a role: owner 4 > administrador 3 > supervisor 2 > operador 1 (null for null). Immutable, inlinable into policies.';{% if profile == 'citus' %}

-- Profile citus: text -> public.user_role as an immutable cast. PostgreSQL converts text to an
-- enum through the enum's input function, which is stable (the labels live in pg_enum), and
-- Citus refuses an UPDATE or DELETE of a distributed table whose WHERE holds a CASE or
-- COALESCE over a non-immutable function (0A000 "non-IMMUTABLE functions are not allowed in
-- CASE or COALESCE statements"), as in `role_rank(role) < coalesce(role_rank($1::user_role), 0)`
-- (issue 19). The labels are fixed by the migrations (0030), so the mapping is immutable; the
-- conversion itself is still the enum's input function (through name: no cast from name to
-- the enum is defined, so it is not this one), with its 22P02 for an unknown label.
create function private.user_role_from_text(p_label text) returns public.user_role
  language plpgsql immutable strict parallel safe security invoker
  set search_path = pg_catalog, pg_temp
as $$
begin
  return p_label::pg_catalog.name::public.user_role;
end
$$;
comment on function private.user_role_from_text(text) is
  'Profile citus: the cast text -> public.user_role, immutable (the enum''s own input function is stable, and Citus refuses a stable function inside CASE/COALESCE of an UPDATE or DELETE of a distributed table). 22P02 for an unknown label, null for null.';
revoke execute on function private.user_role_from_text(text) from public, anon;
grant execute on function private.user_role_from_text(text) to authenticated, service_role;
create cast (text as public.user_role) with function private.user_role_from_text(text);
comment on cast (text as public.user_role) is
  'Profile citus: explicit casts of text to public.user_role go through private.user_role_from_text(text), immutable, so Citus accepts them inside CASE/COALESCE of an UPDATE or DELETE (issue 19).';{% endif %}

{% if profile == 'citus' -%}
-- Profile citus: PL/pgSQL, the identity in a variable, one read of the membership for all
-- three (private.caller_membership). Citus plans every query of a reference table in a
-- helper as a distributed query; with a parameter instead of the auth.uid() call it
-- becomes a fast-path query whose local plan is cached, about 45 us a call on a worker
-- instead of about 200 us; inside a shard statement the local placement read directly is
-- cheaper still (issue 19; docs/scale-out.md, "Reads under RLS"). Each helper reads the
-- membership itself (one function call less: a policy's InitPlan runs one helper).
{% macro membership_read(columns, targets) -%}
  if v_placement is null then
    select {{ columns }} into {{ targets }} from private.memberships m where m.auth_user_id = v_uid and m.is_active;
  else
    -- inside a shard statement on a worker: the reference table's local placement directly
    execute pg_catalog.format('select {{ columns }} from %s m where m.auth_user_id = $1 and m.is_active', v_placement)
       into {{ targets }} using v_uid;
  end if;
{%- endmacro %}
-- Inside a shard statement on a worker the company's co-located placements are on that
-- node: read directly they cost a plan of one query (about 40 us), read through Citus's
-- planner and local executor (the shell table) more (about 150 us for the chatbots).
create function private.local_placement(p_table regclass, p_company_id uuid)
returns text
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_shard text;
begin
  -- doctor: allow setting.read application_name it only picks where the same rows are read (the company's local placement inside a shard statement on a worker, the table through Citus elsewhere), under the reader's own privileges and RLS either way
  if pg_catalog.current_setting('application_name') not like 'citus\_internal gpid=%' then
    return null;
  end if;
  if pg_catalog.citus_is_coordinator() then
    return null;
  end if;
  -- no query: Citus's metadata cache names the shard (a reference table's one shard for a
  -- null company), the catalog says whether it is here. A placement of another company
  -- being moved away may still be here: never one of a shard statement's own company,
  -- whose placements are where the statement runs, and the policies compare company_id.
  v_shard := pg_catalog.shard_name(p_table, pg_catalog.get_shard_id_for_distribution_column(p_table, p_company_id), false);
  if pg_catalog.to_regclass(v_shard) is null then
    return null;
  end if;
  return v_shard;
end
$$;
comment on function private.local_placement(regclass, uuid) is
  'Profile citus: inside a shard statement on a worker (a session Citus opened, application_name citus_internal gpid=..., on a node that is not the coordinator), the qualified name of the shard of p_table holding company p_company_id (of a reference table: its one shard, p_company_id null) when that shard is on this node; null anywhere else (42P01-free: a shard not here is null). What private.caller_membership and private.read_chatbot_ids read there instead of the table: the same rows in the same transaction (Citus''s local execution reads that placement too), under the reader''s privileges and RLS, at the price of one planned query instead of a distributed one.';
revoke execute on function private.local_placement(regclass, uuid) from public, anon;
grant execute on function private.local_placement(regclass, uuid) to authenticated, service_role;

create function private.caller_membership(out company_id uuid, out user_id uuid, out role public.user_role)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
begin
  {{ membership_read('m.company_id, m.id, m.role', 'company_id, user_id, role') }}
end
$$;
comment on function private.caller_membership() is
  'Profile citus: the caller''s active membership (company, public.users.id, role) from the reference table private.memberships for auth.uid(); nulls for none. The membership as the chatbot helpers need it, in one read (get_current_user_id(), get_user_company_id() and get_user_role() read their column the same way). Through Citus (a fast-path query, its local plan cached), or inside a shard statement on a worker from the table''s local placement directly (private.local_placement). Out parameters, not the table''s row type: Citus propagates a function to the workers only when what it depends on is distributed, and this one is created before the distribution step.';
revoke execute on function private.caller_membership() from public, anon;
grant execute on function private.caller_membership() to authenticated, service_role;

{% endif -%}
create function private.get_current_user_id() returns uuid
  language {{ 'plpgsql' if profile == 'citus' else 'sql' }} stable security definer
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $${% if profile == 'citus' %}
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_id uuid;
begin
  {{ membership_read('m.id', 'v_id') }}
  return v_id;
end{% else %}
  select u.id
    from public.users u
   where u.auth_user_id = auth.uid()
     and u.is_active{% endif %}
$$;
comment on function private.get_current_user_id() is
  'The caller''s public.users.id (active members only), from auth.uid(); null otherwise. Wrap in (select ...) in policies.';

create function private.get_user_company_id() returns uuid
  language {{ 'plpgsql' if profile == 'citus' else 'sql' }} stable security definer
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $${% if profile == 'citus' %}
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_company_id uuid;
begin
  {{ membership_read('m.company_id', 'v_company_id') }}
  return v_company_id;
end{% else %}
  select u.company_id
    from public.users u
   where u.auth_user_id = auth.uid()
     and u.is_active{% endif %}
$$;
comment on function private.get_user_company_id() is
  'The caller''s company (public.companies.id) if they are an active member; null otherwise. Wrap in (select ...) in policies.';

create function private.get_user_role() returns public.user_role
  language {{ 'plpgsql' if profile == 'citus' else 'sql' }} stable security definer
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $${% if profile == 'citus' %}
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_role public.user_role;
begin
  {{ membership_read('m.role', 'v_role') }}
  return v_role;
end{% else %}
  select u.role
    from public.users u
   where u.auth_user_id = auth.uid()
     and u.is_active{% endif %}
$$;
comment on function private.get_user_role() is
  'The caller''s role in their company if they are an active member; null otherwise. Wrap in (select ...) in policies.';

revoke execute on function public.role_rank(public.user_role) from public;
grant execute on function public.role_rank(public.user_role) to anon, authenticated, service_role;
revoke execute on function private.get_current_user_id(), private.get_user_company_id(), private.get_user_role() from public, anon;
grant execute on function private.get_current_user_id(), private.get_user_company_id(), private.get_user_role()
  to authenticated, service_role;

-- Who is subject to the tenant rules enforced in triggers: any role without
-- RLS bypass (authenticated, anon, ...). service_role, the migration owner and
-- security definer functions of this package are trusted.
create function private.caller_is_subject_to_rls() returns boolean
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select not (r.rolsuper or r.rolbypassrls)
             from pg_catalog.pg_roles r
            where r.rolname = current_user), true)
$$;
comment on function private.caller_is_subject_to_rls() is
  'True when the current role is subject to RLS (an end user: authenticated/anon); false for service_role, superusers and inside security definer functions owned by the migration owner.';
revoke execute on function private.caller_is_subject_to_rls() from public;
-- Invoker trigger functions (running as the end user) call it: the schema
-- usage exposes nothing else, every other private function stays without
-- execute grants.
grant usage on schema private to authenticated, service_role;
grant execute on function private.caller_is_subject_to_rls() to authenticated, service_role;

-- Read-only tenants: a company whose subscription is suspended or canceled keeps
-- reading (and exporting) its data but writes nothing, by any end-user path. The
-- restrictive policies insert/update/delete_while_writable on every tenant table
-- (policies/_read_only.sql) call the no-argument form once per statement; the write
-- RPCs that run past RLS (security definer) call the company form themselves.
-- trialing, active and past_due (billing retries: a grace period) stay writable.
-- service_role and the jobs are not end users: billing reactivates a company by
-- updating companies.subscription_status as service_role.{% if profile == 'citus' %}
-- Profile citus: both forms run as their caller (security invoker). companies is
-- distributed; a definer reading it after the member's own write in the same transaction
-- fails with 25001 ("placements that were modified in this transaction by a different
-- user", issue 19). A member reads its own company under RLS (select_own_company); the
-- write RPCs call it as their definer. No policy is restrictive on this profile (Citus
-- recreates them permissive on its shards): the no-argument form is ANDed into every
-- permissive write policy of a read-only table instead (runner/neurant_db/citus_render.py).{% endif %}
create function private.require_company_writable(p_company_id uuid) returns boolean
  language plpgsql stable security {{ 'invoker' if profile == 'citus' else 'definer' }}
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $$
declare
  v_status public.subscription_status;
begin
  select c.subscription_status into v_status from public.companies c where c.id = p_company_id;
  if v_status in ('suspended', 'canceled') then
    raise exception using
      errcode = 'NA002',
      message = format('company is read-only: its subscription is %s', v_status),
      hint = 'Reactivate the subscription to make changes; reading and exporting the company''s data still work.';
  end if;
  return true;
end
$$;
comment on function private.require_company_writable(uuid) is
  'True when company p_company_id accepts writes by its members (subscription trialing, active or past_due; also for null or unknown ids: nothing to guard); raises NA002 "company is read-only" when it is suspended or canceled. Called by the write RPCs that run as security definer.';

create function private.require_company_writable() returns boolean
  language sql stable security {{ 'invoker' if profile == 'citus' else 'definer' }}
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $$
  select private.require_company_writable(private.get_user_company_id())
$$;
comment on function private.require_company_writable() is
  'private.require_company_writable(uuid) for the caller''s own company (true for a caller without one: the other policies deny). {{ 'On profile citus ANDed into every write policy of a read-only table (Citus keeps no restrictive policy on its shards), called bare.' if profile == 'citus' else 'The check of the restrictive *_while_writable policies; wrap it in (select ...) so it runs once per statement.' }}';

revoke execute on function private.require_company_writable(uuid), private.require_company_writable() from public, anon;
-- The policies call the no-argument form (the caller's own company); the company form is for
-- the security definer RPCs, which run as its owner: a member calling it with another
-- company's id would learn whether that company is suspended or canceled (issue 20, item 7).
grant execute on function private.require_company_writable() to authenticated, service_role;
grant execute on function private.require_company_writable(uuid) to service_role;{% if profile == 'citus' %}
-- Profile citus: the no-argument form runs as its caller (above), so the caller needs the
-- company form too; as an invoker it reads companies under the caller's RLS, so another
-- company's id finds no row and reveals nothing.
grant execute on function private.require_company_writable(uuid) to authenticated;{% endif %}
