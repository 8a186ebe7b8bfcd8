-- Why: undoes 4800_citus_placement_readers.sql (profile citus only, like it): the context
-- helpers and private.read_chatbot_ids(boolean) as functions/0300_context_helpers.sql and
-- functions/1300_chatbot_access_helpers.sql define them on this profile (a dynamic query of the
-- local placement inside a shard statement), then drops the readers and the function writing them.
create or replace function private.caller_membership(out company_id uuid, out user_id uuid, out role public.user_role)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
set citus.allow_nested_distributed_execution = on
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
begin
  if v_placement is null then
    select m.company_id, m.id, m.role into company_id, user_id, role from private.memberships m where m.auth_user_id = v_uid and m.is_active;
  else
    -- inside a shard statement on a worker: the reference table's local placement directly
    execute pg_catalog.format('select m.company_id, m.id, m.role from %s m where m.auth_user_id = $1 and m.is_active', v_placement)
       into company_id, user_id, role using v_uid;
  end if;
end
$$;

create or replace function private.get_current_user_id() returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set citus.allow_nested_distributed_execution = on
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_id uuid;
begin
  if v_placement is null then
    select m.id into v_id from private.memberships m where m.auth_user_id = v_uid and m.is_active;
  else
    -- inside a shard statement on a worker: the reference table's local placement directly
    execute pg_catalog.format('select m.id from %s m where m.auth_user_id = $1 and m.is_active', v_placement)
       into v_id using v_uid;
  end if;
  return v_id;
end
$$;

create or replace function private.get_user_company_id() returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set citus.allow_nested_distributed_execution = on
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_company_id uuid;
begin
  if v_placement is null then
    select m.company_id into v_company_id from private.memberships m where m.auth_user_id = v_uid and m.is_active;
  else
    -- inside a shard statement on a worker: the reference table's local placement directly
    execute pg_catalog.format('select m.company_id from %s m where m.auth_user_id = $1 and m.is_active', v_placement)
       into v_company_id using v_uid;
  end if;
  return v_company_id;
end
$$;

create or replace function private.get_user_role() returns public.user_role
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set citus.allow_nested_distributed_execution = on
as $$
declare
  v_uid uuid := auth.uid();
  v_placement text := private.local_placement('private.memberships', null);
  v_role public.user_role;
begin
  if v_placement is null then
    select m.role into v_role from private.memberships m where m.auth_user_id = v_uid and m.is_active;
  else
    -- inside a shard statement on a worker: the reference table's local placement directly
    execute pg_catalog.format('select m.role from %s m where m.auth_user_id = $1 and m.is_active', v_placement)
       into v_role using v_uid;
  end if;
  return v_role;
end
$$;

create or replace function private.read_chatbot_ids(p_visible boolean)
returns uuid[]
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
set citus.allow_nested_distributed_execution = on
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

drop function private.chatbot_ids_in_placement(text, uuid, uuid);
drop function private.membership_in_placement(text, uuid);
drop function private.citus_placement_readers();
