-- neurant: profile citus
-- Profile citus only (the other profiles do not list this migration): the policies of
-- every shard in the shape of the vanilla profile, each helper call wrapped in
-- (select ...) (issue 19, "Reads under RLS" in docs/scale-out.md).
--
-- Citus refuses a subquery in a policy of a distributed or reference table, so the
-- policies of the tables themselves call the helpers bare (runner/neurant_db/citus_render.py),
-- and Citus recreates them so on every shard. A bare call is no InitPlan: PostgreSQL runs it
-- once more at planning (its estimate of an index condition), and once per row where it is
-- only a filter. On a shard nothing refuses the wrapped form, and the shards are where a
-- policy decides: the coordinator does not apply the policies of a SELECT (it sends the
-- query to the shard), and the functions it evaluates for a modification are those of the
-- table's own policies, unchanged. So each placement's policies are altered to the same
-- condition with every call of a helper without arguments wrapped, as the vanilla
-- policies write it: one call per statement, none at planning.
--
-- Citus makes the shards of a move, split or rebalance from the table's policies, bare
-- again (correct, slower): run `select private.citus_shard_policies();` after one, and
-- after a later migration that creates or alters a policy of a distributed table.
-- run_command_on_placements works over connections of its own, outside this transaction:
-- the step runs after 3990 committed the shards, and a second run changes nothing.
create function private.citus_initplan_form(p_condition text) returns text
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_call text;
  v_type text;
begin
  for v_call in
    select distinct m[1]
      from pg_catalog.regexp_matches(p_condition, '((?:public|private|auth)\.[a-z_][a-z0-9_]*\(\))', 'g') m
  loop
    -- the result type is written out: `= any ((select f())::uuid[])`, as `any ((select f()))` is a subquery
    select pg_catalog.format_type(p.prorettype, null) into strict v_type
      from pg_catalog.pg_proc p where p.oid = v_call::pg_catalog.regprocedure;
    p_condition := pg_catalog.regexp_replace(p_condition,
      '(?<![a-z0-9_.])' || pg_catalog.replace(pg_catalog.replace(v_call, '.', '\.'), '()', '\(\)'),
      pg_catalog.format('(select %s)::%s', v_call, v_type), 'g');
  end loop;
  return p_condition;
end
$$;
comment on function private.citus_initplan_form(text) is
  'Profile citus: a policy condition (pg_get_expr of pg_policy) with every call of a helper without arguments (public./private./auth.name()) wrapped as (select name())::<its result type>, the InitPlan form of the vanilla policies; null for null.';
revoke execute on function private.citus_initplan_form(text) from public, anon, authenticated;

create function private.citus_shard_policies(p_initplan boolean default true) returns integer
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_table record;
  v_failed text;
  v_done integer := 0;
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is null
     or pg_catalog.to_regprocedure('pg_catalog.run_command_on_placements(regclass, text, boolean)') is null then
    raise notice 'citus not installed (no pg_dist_partition, run_command_on_placements): no shard policies to alter';
    return 0;
  end if;
  -- One command per table (every policy of it), sent to each placement with the shard's name
  -- for %1$s; a % of a condition doubled for format().
  for v_table in
    execute $q$
      select p.polrelid::pg_catalog.regclass as rel,
             pg_catalog.string_agg(pg_catalog.format('alter policy %I on %%1$s', p.polname)
               || coalesce(' using (' || pg_catalog.replace(
                    case when $1 then private.citus_initplan_form(pg_catalog.pg_get_expr(p.polqual, p.polrelid))
                         else pg_catalog.pg_get_expr(p.polqual, p.polrelid) end, '%', '%%') || ')', '')
               || coalesce(' with check (' || pg_catalog.replace(
                    case when $1 then private.citus_initplan_form(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
                         else pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) end, '%', '%%') || ')', ''),
               '; ' order by p.polname) as command
        from pg_catalog.pg_policy p
       where p.polrelid in (select d.logicalrelid from pg_catalog.pg_dist_partition d)
       group by p.polrelid
       order by p.polrelid::pg_catalog.regclass::text
    $q$ using p_initplan
  loop
    execute 'select pg_catalog.string_agg(r.nodename || '':'' || r.nodeport || '' shard '' || r.shardid || '': '' || r.result, ''; '')
               from pg_catalog.run_command_on_placements($1, $2) r where not r.success'
       into v_failed using v_table.rel, v_table.command;
    if v_failed is not null then
      raise exception using
        errcode = '55000',
        message = pg_catalog.format('the policies of %s could not be altered on every placement: %s', v_table.rel, v_failed),
        hint = 'Run select private.citus_shard_policies(); again once every node is reachable: it alters each placement to the same text.';
    end if;
    v_done := v_done + 1;
  end loop;
  return v_done;
end
$$;
comment on function private.citus_shard_policies(boolean) is
  'Profile citus: alters the policies of every placement of every Citus table to its table''s policies with each helper call wrapped in (select ...) (private.citus_initplan_form: one call per statement, as on the vanilla profile), or back to the table''s bare text (p_initplan false). Idempotent; run after a shard move, split or rebalance (Citus copies the table''s bare policies) and after a migration that creates or alters a policy of a Citus table. 55000 naming the placements that failed; a NOTICE and 0 without Citus. Returns how many tables it altered.';
revoke execute on function private.citus_shard_policies(boolean) from public, anon, authenticated;

select private.citus_shard_policies();
