-- neurant: profile citus
-- Why: scale-out (issue 19, deliver 5: reads under RLS, the transcript; docs/scale-out.md
-- "Reads under RLS"), domains 0 and 1, objects private.citus_placement_readers() (new),
-- private.membership_in_placement(text, uuid) and private.chatbot_ids_in_placement(text, uuid,
-- uuid) (new, written by it), and, create or replace of each whole function, the context
-- helpers private.caller_membership(), get_current_user_id(), get_user_company_id(),
-- get_user_role() (supersede functions/0300_context_helpers.sql) and
-- private.read_chatbot_ids(boolean) (supersedes functions/1300_chatbot_access_helpers.sql).
--
-- Inside a shard statement on a worker the policy helpers read the local placements of
-- private.memberships, public.chatbots and public.chatbot_operators directly
-- (private.local_placement). They did so with one dynamic query each (EXECUTE format(...)):
-- parsed and planned at every call, because the placement's name is known only at run time.
-- Measured on the test cluster (track_functions on the worker, the transcript under RLS):
-- get_user_company_id() about 94 us, get_visible_chatbot_ids() 192 us a statement, most of
-- it planning; a query of a fixed relation in PL/pgSQL keeps its plan for the session (Citus
-- keeps its connections to the workers, so the backend of a shard statement does too).
-- After: 54 us and 84 us, the transcript 1.33x the explicit filter instead of 1.6x.
--
-- The shards of a table are few and known after the distribution step: every node holds the
-- same names in pg_dist_shard. private.citus_placement_readers() writes two readers whose text
-- names every shard of those three tables, one static query per shard (PL/pgSQL plans a
-- statement only when it first runs, so the shards another node holds cost nothing here):
--   * private.membership_in_placement(placement, uid): the active membership of uid in that
--     placement of private.memberships (its one shard, the same on every node);
--   * private.chatbot_ids_in_placement(placement, company, user): the ids of the company's
--     chatbots (user null) or of the user's assignments (chatbot_operators) in that placement.
-- A placement the text does not name (a shard split makes new ones before the readers are
-- written again) is read with the dynamic query, as before: same rows, slower. Both are
-- security invoker and executable by their owner only: the helpers call them as the owner
-- (the definer context helpers; read_chatbot_ids under private.chatbot_ids_in_shard), so they
-- add no right. Citus propagates the functions to every node (create or replace from the
-- coordinator); the function writing them runs once here, and again after a shard split
-- (docs/scale-out.md).
-- The helpers call them where they ran the dynamic query; anywhere else (the coordinator, a
-- direct call: private.local_placement null) they read through Citus as before.
create function private.citus_placement_readers() returns integer
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $gen$
declare
  v_shard record;
  v_memberships text := '';
  v_chatbots text := '';
  v_operators text := '';
  v_named integer := 0;
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_shard') is not null then
    for v_shard in
      execute $q$
        select s.logicalrelid::pg_catalog.regclass::text as rel,
               pg_catalog.shard_name(s.logicalrelid, s.shardid, false) as shard
          from pg_catalog.pg_dist_shard s
         where s.logicalrelid in ('private.memberships'::pg_catalog.regclass, 'public.chatbots'::pg_catalog.regclass,
                                  'public.chatbot_operators'::pg_catalog.regclass)
         order by s.shardid
      $q$
    loop
      -- the name is Citus's own (shard_name: schema-qualified, quoted where needed), used
      -- as the literal it is compared with and as the relation the query reads
      if v_shard.rel = 'private.memberships' then
        v_memberships := v_memberships || pg_catalog.format($t$
  if p_placement = %1$L then
    select m.company_id, m.id, m.role into company_id, user_id, role
      from %1$s m where m.auth_user_id = p_uid and m.is_active;
    return;
  end if;$t$, v_shard.shard);
      elsif v_shard.rel = 'public.chatbots' then
        v_chatbots := v_chatbots || pg_catalog.format($t$
      when %1$L then
        return array(select b.id from %1$s b where b.company_id = p_company_id order by b.id);$t$, v_shard.shard);
      else
        v_operators := v_operators || pg_catalog.format($t$
      when %1$L then
        return array(select co.chatbot_id from %1$s co
                      where co.company_id = p_company_id and co.user_id = p_user_id order by co.chatbot_id);$t$,
          v_shard.shard);
      end if;
      v_named := v_named + 1;
    end loop;
  end if;

  execute pg_catalog.format($f$
create or replace function private.membership_in_placement(p_placement text, p_uid uuid,
    out company_id uuid, out user_id uuid, out role public.user_role)
  language plpgsql stable security invoker
as $body$
begin%s
  execute pg_catalog.format('select m.company_id, m.id, m.role from %%s m where m.auth_user_id = $1 and m.is_active',
                            p_placement)
     into company_id, user_id, role using p_uid;
end
$body$
$f$, v_memberships);
  -- one CASE per table (no branch without Citus): a shard's name picks its static query
  if v_chatbots <> '' then
    v_chatbots := E'\n    case p_placement' || v_chatbots || E'\n      else null;\n    end case;';
  end if;
  if v_operators <> '' then
    v_operators := E'\n    case p_placement' || v_operators || E'\n      else null;\n    end case;';
  end if;
  execute pg_catalog.format($f$
create or replace function private.chatbot_ids_in_placement(p_placement text, p_company_id uuid, p_user_id uuid)
  returns uuid[]
  language plpgsql stable security invoker
as $body$
declare
  v_ids pg_catalog.uuid[];
begin
  if p_user_id is null then%s
  else%s
  end if;
  if p_user_id is null then
    execute pg_catalog.format('select array(select b.id from %%s b where b.company_id = $1 order by b.id)', p_placement)
       into v_ids using p_company_id;
  else
    execute pg_catalog.format('select array(select co.chatbot_id from %%s co where co.company_id = $1 and co.user_id = $2 '
                              || 'order by co.chatbot_id)', p_placement)
       into v_ids using p_company_id, p_user_id;
  end if;
  return v_ids;
end
$body$
$f$, v_chatbots, v_operators);

  comment on function private.membership_in_placement(text, uuid) is
    'Profile citus: the active membership (company, public.users.id, role) of auth identity p_uid in p_placement, a placement of private.memberships on this node (private.local_placement); nulls for none. Its text names the table''s shard (private.citus_placement_readers() writes it) and reads it with a static query, its plan kept by the session; any other placement with a dynamic query. Security invoker, executable by its owner only: the definer context helpers and private.read_chatbot_ids (as the owner, inside a shard statement) call it. doctor: allow function.search_path called only by the context helpers, under their search_path (pg_catalog, pg_temp); every name in it is qualified.';
  comment on function private.chatbot_ids_in_placement(text, uuid, uuid) is
    'Profile citus: the ids of the chatbots of company p_company_id in p_placement, a placement of public.chatbots (p_user_id null), or of the chatbots user p_user_id is assigned to in p_placement, a placement of public.chatbot_operators; sorted. Its text names every shard of both tables (private.citus_placement_readers() writes it) and reads each with a static query, its plan kept by the session; any other placement with a dynamic query. Security invoker, executable by its owner only: private.read_chatbot_ids calls it inside a shard statement, where private.chatbot_ids_in_shard runs it as the owner. doctor: allow function.search_path called only by the chatbot helpers, under their search_path (pg_catalog, pg_temp); every name in it is qualified.';
  -- no role but their owner runs them: the helpers that call them run as the owner there
  revoke execute on function private.membership_in_placement(text, uuid) from public, anon, authenticated, service_role;
  revoke execute on function private.chatbot_ids_in_placement(text, uuid, uuid) from public, anon, authenticated, service_role;
  return v_named;
end
$gen$;
comment on function private.citus_placement_readers() is
  'Profile citus: writes private.membership_in_placement(text, uuid) and private.chatbot_ids_in_placement(text, uuid, uuid) with one static query for each shard of private.memberships, public.chatbots and public.chatbot_operators that pg_dist_shard lists (a dynamic query for any other placement; only that without Citus). Run after a shard split (new shard names); a move or rebalance keeps the names. Returns how many shards the readers name.';
revoke execute on function private.citus_placement_readers() from public, anon, authenticated;

select private.citus_placement_readers();

{% macro membership_read(columns, targets, field) -%}
  if v_placement is null then
    select {{ columns }} into {{ targets }} from private.memberships m where m.auth_user_id = v_uid and m.is_active;
  else
    -- inside a shard statement on a worker: the reference table's local placement (a static
    -- query where private.membership_in_placement names it)
    {{ targets }} := (private.membership_in_placement(v_placement, v_uid)).{{ field }};
  end if;
{%- endmacro %}
create or replace function private.caller_membership(out company_id uuid, out user_id uuid, out role public.user_role)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_row record;
begin
  if v_placement is null then
    select m.company_id, m.id, m.role into company_id, user_id, role from private.memberships m where m.auth_user_id = v_uid and m.is_active;
  else
    -- inside a shard statement on a worker: the reference table's local placement (a static
    -- query where private.membership_in_placement names it)
    v_row := private.membership_in_placement(v_placement, v_uid);
    company_id := v_row.company_id;
    user_id := v_row.user_id;
    role := v_row.role;
  end if;
end
$$;

create or replace function private.get_current_user_id() returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_id uuid;
begin
  {{ membership_read('m.id', 'v_id', 'user_id') }}
  return v_id;
end
$$;

create or replace function private.get_user_company_id() returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_company_id uuid;
begin
  {{ membership_read('m.company_id', 'v_company_id', 'company_id') }}
  return v_company_id;
end
$$;

create or replace function private.get_user_role() returns public.user_role
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_role public.user_role;
begin
  {{ membership_read('m.role', 'v_role', 'role') }}
  return v_role;
end
$$;

create or replace function private.read_chatbot_ids(p_visible boolean)
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
  v_placement text := private.local_placement('private.memberships', null);
  v_row record;
begin
  if v_placement is null then
    select m.company_id, m.user_id, m.role into v_company_id, v_user_id, v_role from private.caller_membership() m;
  else
    -- inside a shard statement on a worker, where private.chatbot_ids_in_shard calls it as the
    -- owner: the membership from the reference table's local placement, without the definer
    -- private.caller_membership() in between (a member calling this directly from a session
    -- posing as Citus's may not read the placement: 42501)
    v_row := private.membership_in_placement(v_placement, auth.uid());
    v_company_id := v_row.company_id;
    v_user_id := v_row.user_id;
    v_role := v_row.role;
  end if;
  if v_company_id is null then
    return '{}'::uuid[];
  end if;
  -- the company in a variable: each query is routed to the member's co-located shard
  -- (static: its plan cached), or inside a shard statement on its worker reads the
  -- company's placement there directly (private.local_placement, then a static query where
  -- private.chatbot_ids_in_placement names it)
  if p_visible and v_role in ('owner', 'administrador', 'supervisor') then
    v_placement := private.local_placement('public.chatbots', v_company_id);
    if v_placement is null then
      return array(select b.id from public.chatbots b where b.company_id = v_company_id order by b.id);
    end if;
    return private.chatbot_ids_in_placement(v_placement, v_company_id, null);
  elsif not p_visible or v_role = 'operador' then
    v_placement := private.local_placement('public.chatbot_operators', v_company_id);
    if v_placement is null then
      return array(select co.chatbot_id from public.chatbot_operators co
                    where co.company_id = v_company_id and co.user_id = v_user_id
                    order by co.chatbot_id);
    end if;
    return private.chatbot_ids_in_placement(v_placement, v_company_id, v_user_id);
  end if;
  return '{}'::uuid[];
end
$$;
