-- Why: operador-scoped policies need "the caller's assigned chatbots" without a per-row
-- subquery into chatbot_operators (slow, and rejected by Citus on distributed tables).
-- This security definer helper returns them as an array that a policy evaluates once per
-- statement: chatbot_id = any ((select private.get_assigned_chatbot_ids())::uuid[]).
{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
{% from 'policies/_rls.sql' import rls -%}
{% macro citus_helper_cost() %}{% if profile == 'citus' %}
cost 10000{% endif %}{% endmacro -%}
{% if profile == 'citus' -%}
-- Profile citus: who reads the chatbots of a policy (issue 19, failure 8). Citus keeps one
-- connection per node and database user in a transaction, and refuses a placement (and
-- its co-located ones: the whole company) modified over one user's connection to another
-- user: 25001 "cannot perform query on placements that were modified in this transaction
-- by a different user". A modification's policy helpers are evaluated twice: on the
-- coordinator (Citus evaluates every non-immutable function of an INSERT, UPDATE or DELETE
-- before routing it, the policies included, source: citus_custom_scan.c,
-- CitusBeginModifyScan) and in the shard statement on the worker, where the policy
-- decides. A security definer reading chatbots on the coordinator after the member wrote
-- to its company in the transaction reads over the owner's connection: 25001. So the two
-- chatbot helpers are security invoker and choose who reads:
--   * inside a shard statement (a session Citus opened, application_name
--     'citus_internal gpid=...', as Citus itself tells them apart: IsCitusInternalBackend)
--     the company's shards are on this node and read locally, without a connection: as
--     the owner (private.chatbot_ids_in_shard), past RLS;
--   * anywhere else (the coordinator, a direct call) as the caller, over the caller's own
--     connections: the caller's RLS lets it read exactly these rows (chatbots.select_visible,
--     chatbot_operators.select_visible), so the answer is the same; slower (the chatbots
--     read runs their policies), and only modifications and direct calls take this path.
-- A session that sets its application_name to look internal only picks the other path to
-- the same answer (or a 25001). Both paths run private.read_chatbot_ids, invoker: as whoever
-- calls it.
-- cost 10000 tells the planner a call is expensive, so that it makes the helper an index
-- condition (evaluated once per scan) rather than a filter evaluated per row.

create function private.read_chatbot_ids(p_visible boolean)
returns uuid[]
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}
as $$
declare
  v_company_id uuid;
  v_user_id uuid;
  v_role public.user_role;
  v_placement text;
  v_ids uuid[];
begin
  select m.company_id, m.user_id, m.role into v_company_id, v_user_id, v_role from private.caller_membership() m;
  if v_company_id is null then
    return '{}'::uuid[];
  end if;
  -- the company in a variable: each query is routed to the member's co-located shard
  -- (static: its plan cached), or inside a shard statement on its worker reads the
  -- company's placement there directly (private.local_placement)
  if p_visible and v_role in ('owner', 'administrador', 'supervisor') then
    v_placement := private.local_placement('public.chatbots', v_company_id);
    if v_placement is null then
      return array(select b.id from public.chatbots b where b.company_id = v_company_id order by b.id);
    end if;
    execute pg_catalog.format('select array(select b.id from %s b where b.company_id = $1 order by b.id)', v_placement)
       into v_ids using v_company_id;
    return v_ids;
  elsif not p_visible or v_role = 'operador' then
    v_placement := private.local_placement('public.chatbot_operators', v_company_id);
    if v_placement is null then
      return array(select co.chatbot_id from public.chatbot_operators co
                    where co.company_id = v_company_id and co.user_id = v_user_id
                    order by co.chatbot_id);
    end if;
    execute pg_catalog.format('select array(select co.chatbot_id from %s co where co.company_id = $1 and co.user_id = $2 '
                              || 'order by co.chatbot_id)', v_placement)
       into v_ids using v_company_id, v_user_id;
    return v_ids;
  end if;
  return '{}'::uuid[];
end
$$;
comment on function private.read_chatbot_ids(boolean) is
  'Profile citus: the body of both chatbot helpers, read as whoever calls this function (security invoker): the caller''s visible chatbots (p_visible: every chatbot of its company for owner/administrador/supervisor, its assigned ones for an operador, none otherwise), or its assigned ones. As the owner from private.chatbot_ids_in_shard, as the member outside a shard statement, under its RLS: the same rows (chatbots.select_visible, chatbot_operators.select_visible). Inside a shard statement on a worker it reads the company''s local placement of chatbots / chatbot_operators directly (private.local_placement), elsewhere the table through Citus.';
revoke execute on function private.read_chatbot_ids(boolean) from public, anon;
grant execute on function private.read_chatbot_ids(boolean) to authenticated, service_role;

create function private.chatbot_ids_in_shard(p_visible boolean)
returns uuid[]
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}
as $$
begin
  return private.read_chatbot_ids(p_visible);
end
$$;
comment on function private.chatbot_ids_in_shard(boolean) is
  'Profile citus: the chatbot helpers inside a shard statement: private.read_chatbot_ids(p_visible) as the owner (past RLS; the co-located shard is on this node and read locally).';
revoke execute on function private.chatbot_ids_in_shard(boolean) from public, anon;
grant execute on function private.chatbot_ids_in_shard(boolean) to authenticated, service_role;

{% endif -%}

create function private.get_assigned_chatbot_ids()
returns uuid[]
language {{ 'plpgsql' if profile == 'citus' else 'sql' }}
stable
security {{ 'invoker' if profile == 'citus' else 'definer' }}
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}{{ citus_helper_cost() }}
as $${% if profile == 'citus' %}
-- Profile citus: inside a shard statement as the owner, anywhere else as the caller (below).
begin
  -- doctor: allow setting.read application_name it only picks who reads (the owner inside a shard statement, the caller elsewhere), and both read the same rows: a session posing as Citus's gets the same answer, or 25001
  if pg_catalog.current_setting('application_name') like 'citus\_internal gpid=%' then
    return private.chatbot_ids_in_shard(false);
  end if;
  return private.read_chatbot_ids(false);
end{% else %}
  select coalesce(pg_catalog.array_agg(co.chatbot_id order by co.chatbot_id), '{}')
    from public.chatbot_operators co
   where co.company_id = private.get_user_company_id()
     and co.user_id = private.get_current_user_id(){% endif %}
$$;
comment on function private.get_assigned_chatbot_ids() is
  'Ids of the chatbots the calling user is assigned to as operador (empty array for none or no user). Use in policies wrapped in (select ...).{{ " Profile citus: security invoker; inside a shard statement it reads as the owner (private.chatbot_ids_in_shard), anywhere else as the caller, under its RLS (the same rows; no 25001 after the caller''s own writes)." if profile == 'citus' }}';

revoke execute on function private.get_assigned_chatbot_ids() from public, anon;
grant execute on function private.get_assigned_chatbot_ids() to authenticated, service_role;

-- Why (issue 11): the operador branch of a policy written as
--   (role in (owner, administrador, supervisor) or chatbot_id = any (assigned))
-- is an OR the planner cannot turn into an index condition, so an operador's inbox read
-- every conversation of the tenant. private.get_visible_chatbot_ids() folds the role test
-- into the array: every chatbot of the company for owner/administrador/supervisor, the
-- assigned ones for an operador, none otherwise; a policy then reads
--   company_id = (select ...company_id...) and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])
-- and both terms are index conditions. Not for tables whose rows ARE chatbots (a chatbot
-- created by the same statement would not be in the array yet): public.chatbots keeps the
-- role test.
--
{% if profile != 'citus' -%}
-- The array is kept per member in private.chatbot_visibility, written by triggers in the
-- same transaction as the change it follows (membership, role, activation, assignment,
-- chatbot created or deleted), so the helper is one primary-key lookup per statement
-- instead of two queries (the member, then its chatbots): about a third of the RLS
-- constant of a hot read (issue 11). It is a projection of live rows, not a cache: it is
-- never read outside the transaction that wrote it before that commits, a removed,
-- deactivated or demoted member loses access on its next statement, and no client can
-- write it (no grants; RLS forced with no readable rows).
create table private.chatbot_visibility (
  company_id uuid not null,
  user_id uuid not null,
  auth_user_id uuid not null,
  chatbot_ids uuid[] not null default '{}',
  constraint chatbot_visibility_pkey primary key (company_id, user_id),
  constraint chatbot_visibility_auth_user_id_key unique (auth_user_id),
  constraint chatbot_visibility_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint chatbot_visibility_user_fkey foreign key (company_id, user_id)
    references public.users (company_id, id) on delete cascade
);
comment on table private.chatbot_visibility is
  'Per active member: the chatbots whose conversations it may read (all of the company''s for owner/administrador/supervisor, the assigned ones for an operador). Written only by the triggers of public.users, public.chatbots and public.chatbot_operators in the transaction of the change; read by private.get_visible_chatbot_ids().'{{ doctor_notes('private.chatbot_visibility') }};
comment on column private.chatbot_visibility.company_id is 'Company of the member (tenant key).';
comment on column private.chatbot_visibility.user_id is 'The member (public.users.id); the row goes with the member.';
comment on column private.chatbot_visibility.auth_user_id is 'The member''s auth identity (auth.uid()), the lookup key of the helper.';
comment on column private.chatbot_visibility.chatbot_ids is 'Ids of the chatbots the member may read conversations of, sorted.';
comment on constraint chatbot_visibility_auth_user_id_key on private.chatbot_visibility is
  'One row per auth identity, the key the helper looks the caller up by.'{{ doctor_notes('private.chatbot_visibility', 'chatbot_visibility_auth_user_id_key') }};

{{ rls('private.chatbot_visibility') }}
create policy deny_members on private.chatbot_visibility
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on private.chatbot_visibility is
  'Nobody but BYPASSRLS roles (service_role, the owner of the triggers and of private.get_visible_chatbot_ids()) reaches a row: members read their visible chatbots only through that helper.';

{{ tenant_guard('private.chatbot_visibility') }}

create function private.refresh_chatbot_visibility(p_company_id uuid, p_user_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- One writer per company at a time (the company row, which only its members can lock,
  -- not an advisory lock, which any role could take): a chatbot created while a member is
  -- promoted is then seen by whichever refresh runs second, which reads after the first
  -- committed (READ COMMITTED: every statement here takes a new snapshot).
  perform 1 from public.companies c where c.id = p_company_id for no key update;
  delete from private.chatbot_visibility v
   where v.company_id = p_company_id and (p_user_id is null or v.user_id = p_user_id);
  insert into private.chatbot_visibility (company_id, user_id, auth_user_id, chatbot_ids)
  select u.company_id, u.id, u.auth_user_id,
         case when u.role in ('owner', 'administrador', 'supervisor')
              then array(select b.id from public.chatbots b
                          where b.company_id = u.company_id order by b.id)
              else array(select co.chatbot_id from public.chatbot_operators co
                          where co.company_id = u.company_id and co.user_id = u.id
                          order by co.chatbot_id)
         end
    from public.users u
    join public.companies c on c.id = u.company_id -- none while the company is being deleted
   where u.company_id = p_company_id
     and (p_user_id is null or u.id = p_user_id)
     and u.is_active;
end
$$;
comment on function private.refresh_chatbot_visibility(uuid, uuid) is
  'Recomputes private.chatbot_visibility for one member (p_user_id) or every member (null) of company p_company_id from the live users, chatbots and chatbot_operators rows; serialized per company by locking the company row. Called by triggers only.';
revoke execute on function private.refresh_chatbot_visibility(uuid, uuid) from public, anon, authenticated;

create function private.chatbot_visibility_follow()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_table_name = 'users' then
    -- a deleted member's row goes by its foreign key
    if tg_op <> 'DELETE' then
      perform private.refresh_chatbot_visibility(new.company_id, new.id);
    end if;
  elsif tg_table_name = 'chatbots' then
    perform private.refresh_chatbot_visibility(coalesce(new.company_id, old.company_id), null);
  else -- chatbot_operators
    if tg_op in ('DELETE', 'UPDATE') then
      perform private.refresh_chatbot_visibility(old.company_id, old.user_id);
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
      perform private.refresh_chatbot_visibility(new.company_id, new.user_id);
    end if;
  end if;
  return null;
end
$$;
comment on function private.chatbot_visibility_follow() is
  'After-row trigger of public.users, public.chatbots and public.chatbot_operators: refreshes private.chatbot_visibility for the member (membership, role, activation or assignment changed) or the whole company (chatbot created or deleted).';
revoke execute on function private.chatbot_visibility_follow() from public, anon, authenticated;

create trigger users_chatbot_visibility
  after insert or update of role, is_active, auth_user_id on public.users
  for each row execute function private.chatbot_visibility_follow();
comment on trigger users_chatbot_visibility on public.users is
  'Keeps private.chatbot_visibility of the member current (joined, role, activation, identity).';
create trigger chatbots_chatbot_visibility
  after insert or delete on public.chatbots
  for each row execute function private.chatbot_visibility_follow();
comment on trigger chatbots_chatbot_visibility on public.chatbots is
  'A chatbot created or deleted changes what the company''s owner/administrador/supervisor see: refreshes private.chatbot_visibility of the company.';
create trigger chatbot_operators_chatbot_visibility
  after insert or update or delete on public.chatbot_operators
  for each row execute function private.chatbot_visibility_follow();
comment on trigger chatbot_operators_chatbot_visibility on public.chatbot_operators is
  'An assignment made, changed or removed: refreshes private.chatbot_visibility of the operador.';

-- Members who exist before this migration (none on a fresh install).
select private.refresh_chatbot_visibility(c.id, null) from public.companies c;

create function private.get_visible_chatbot_ids()
returns uuid[]
language sql
stable
security definer
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}
as $$
  select coalesce((select v.chatbot_ids from private.chatbot_visibility v
                    where v.auth_user_id = auth.uid()), '{}'::uuid[])
$$;
comment on function private.get_visible_chatbot_ids() is
  'Ids of the chatbots whose conversations the caller may see: all of its company''s for owner/administrador/supervisor, the assigned ones for an operador, empty otherwise (no active membership). One primary-key lookup of private.chatbot_visibility (kept current by triggers in the transaction of every change). Use in policies wrapped in (select ...): chatbot_id = any (...) is an index condition.';

{% else %}
-- Profile citus: no private.chatbot_visibility. Its triggers would be shard triggers of
-- three tables writing a table keyed by auth identity (a reference table, or one not
-- co-located with the row they follow): the shape the Citus experiment of issue 12 saw
-- fail for audit_logs (docs/scale-out.md). The helper reads the live rows instead: the
-- membership from private.memberships (reference), then the chatbots of the caller's
-- company, one query routed to one shard; as the owner inside a shard statement, as the
-- caller anywhere else (the top of this file).
create function private.get_visible_chatbot_ids()
returns uuid[]
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}{{ citus_helper_cost() }}
as $$
begin
  -- doctor: allow setting.read application_name it only picks who reads (the owner inside a shard statement, the caller elsewhere), and both read the same rows: a session posing as Citus's gets the same answer, or 25001
  if pg_catalog.current_setting('application_name') like 'citus\_internal gpid=%' then
    return private.chatbot_ids_in_shard(true);
  end if;
  return private.read_chatbot_ids(true);
end
$$;
comment on function private.get_visible_chatbot_ids() is
  'Ids of the chatbots whose conversations the caller may see: all of its company''s for owner/administrador/supervisor, the assigned ones for an operador, empty otherwise (no active membership). Profile citus: security invoker; inside a shard statement it reads as the owner (private.chatbot_ids_in_shard), anywhere else as the caller, under its RLS (the same rows; no 25001 after the caller''s own writes). Called bare in policies (profile citus), once per shard statement where it is an index condition.';

{% endif -%}
revoke execute on function private.get_visible_chatbot_ids() from public, anon;
grant execute on function private.get_visible_chatbot_ids() to authenticated, service_role;
