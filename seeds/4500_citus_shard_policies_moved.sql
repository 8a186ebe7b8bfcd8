-- neurant: profile citus
-- Why: scale-out (issue 19, shard moves; docs/scale-out.md), objects
-- private.citus_placement_policy_drift() (new) and private.citus_shard_policies(boolean):
-- supersedes the function of seeds/3995_citus_shard_policies.sql (create or replace of the
-- whole function; private.citus_initplan_form is unchanged).
--
-- Citus makes the placements of a shard move, split or rebalance, and those of a node added
-- later, from the table's policies, which call the helpers bare: correct, but no InitPlan
-- (docs/scale-out.md, "Reads under RLS") until private.citus_shard_policies() runs again.
-- That function altered every placement of every Citus table (about 900 on the test cluster,
-- seconds), whatever had moved. Now:
-- * private.citus_placement_policy_drift() lists, from every node (one query per node through
--   run_command_on_all_nodes), each placement whose policies or row level security are not
--   what its table and the rewrite give it: the policy called bare, with a condition, command,
--   roles or permissive flag of its own, missing, extra, or RLS not enabled and forced, each
--   with the statements that mend it on its node. `neurant-db doctor --profile citus`
--   reports it (citus.placement_policies, runner/neurant_db/doctor_placements.py).
-- * private.citus_shard_policies() (p_initplan true) alters only the placements the drift
--   lists as bare or different, one DO block per node, then checks that none is left; what an
--   ALTER POLICY cannot mend (a missing or extra policy, RLS off) is raised as a WARNING naming
--   doctor. private.citus_shard_policies(false) still writes the bare text on every placement.
-- It returns how many tables it altered, 0 when every placement is already rewritten.
create function private.citus_placement_policy_drift()
  returns table (nodename text, nodeport integer, relation text, shardid bigint, shard text, kind text,
                 policy text, fix text)
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $fn$
declare
  -- Run on each node; run_command_on_all_nodes sends one statement and reads its first
  -- result, so the search_path (every name deparsed with its schema) is set inside it: the
  -- CASE condition runs before the subquery of its THEN. The table's shell on the same node
  -- is the reference, deparsed by the same server. A wrapped call `( SELECT f() AS f)` (with
  -- the cast private.citus_initplan_form writes) is unwrapped to compare with it; a call not
  -- so wrapped is bare.
  v_node_query constant text := $node$
    select case when pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true) <> '' then (
    with placement as (
      select s.logicalrelid as rel, s.shardid,
             pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid, false)) as shard
        from pg_dist_shard s join pg_dist_placement p on p.shardid = s.shardid
       where p.groupid = (select g.groupid from pg_dist_local_group g)
    ),
    shape as (
      select p.polrelid as rel, p.polname::text as name, p.polcmd, p.polpermissive, p.polroles,
             coalesce(pg_get_expr(p.polqual, p.polrelid), '') as using_expr,
             coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '') as check_expr,
             format(' as %s for %s to %s', case when p.polpermissive then 'permissive' else 'restrictive' end,
                    case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                                  when 'd' then 'delete' else 'all' end,
                    (select string_agg(case when r.oid = 0 then 'public' else quote_ident(r.rolname) end, ', '
                                       order by r.oid)
                       from unnest(p.polroles) x(oid) left join pg_roles r on r.oid = x.oid))
               || coalesce(' using (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
               || coalesce(' with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '') as body
        from pg_policy p
       where p.polrelid in (select x.rel from placement x union all select x.shard from placement x)
    ),
    compared as (
      select pl.rel, pl.shardid, pl.shard, x.*
        from placement pl
        cross join lateral (
          select t.name as table_policy, s.name as shard_policy, t.body as table_body,
                 t.polcmd = s.polcmd and t.polpermissive = s.polpermissive and t.polroles = s.polroles
                   and regexp_replace(s.using_expr, '\( SELECT ((?:public|private|auth)\.[a-z_][a-z0-9_]*\(\)) AS [a-z_][a-z0-9_]*\)(?:::[a-z_.]+(?:\[\])?)?', '\1', 'g') = t.using_expr
                   and regexp_replace(s.check_expr, '\( SELECT ((?:public|private|auth)\.[a-z_][a-z0-9_]*\(\)) AS [a-z_][a-z0-9_]*\)(?:::[a-z_.]+(?:\[\])?)?', '\1', 'g') = t.check_expr as same,
                 s.using_expr ~ '(?<!SELECT )(?:public|private|auth)\.[a-z_][a-z0-9_]*\(\)' or s.check_expr ~ '(?<!SELECT )(?:public|private|auth)\.[a-z_][a-z0-9_]*\(\)' as bare
            from (select * from shape a where a.rel = pl.rel) t
            full join (select * from shape b where b.rel = pl.shard) s on s.name = t.name) x
    ),
    problem as (
      select pl.rel, pl.shardid, null::regclass as shard, 'missing' as kind, null::text as policy, null::text as fix
        from placement pl where pl.shard is null
      union all
      select pl.rel, pl.shardid, pl.shard, 'rls', null,
             format('alter table %s enable row level security, force row level security;', pl.shard)
        from placement pl join pg_class t on t.oid = pl.rel join pg_class s on s.oid = pl.shard
       where (t.relrowsecurity and not s.relrowsecurity) or (t.relforcerowsecurity and not s.relforcerowsecurity)
      union all
      select c.rel, c.shardid, c.shard,
             case when c.shard_policy is null then 'no_policy' when c.table_policy is null then 'extra_policy'
                  when not c.same then 'differs' else 'bare' end,
             coalesce(c.table_policy, c.shard_policy),
             case when c.shard_policy is null
                  then format('create policy %I on %s%s;', c.table_policy, c.shard, c.table_body)
                  when c.table_policy is null then format('drop policy %I on %s;', c.shard_policy, c.shard)
                  when not c.same then format('drop policy %I on %s; create policy %I on %s%s;',
                                              c.shard_policy, c.shard, c.table_policy, c.shard, c.table_body)
             end
        from compared c
       where c.shard is not null
         and (c.shard_policy is null or c.table_policy is null or not c.same or c.bare)
    )
    select coalesce(json_agg(json_build_object('table', p.rel::regclass::text, 'shardid', p.shardid,
                                               'shard', p.shard::text, 'kind', p.kind, 'policy', p.policy,
                                               'fix', p.fix)
                             order by p.rel::regclass::text, p.shardid, p.kind, p.policy), '[]')::text
      from problem p) end
  $node$;
  v_node record;
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_placement') is null
     or pg_catalog.to_regprocedure('pg_catalog.run_command_on_all_nodes(text, boolean, boolean)') is null then
    return;
  end if;
  for v_node in
    execute $q$
      -- node id 0: the coordinator outside the metadata, which then holds no placement
      select coalesce(n.nodename, 'coordinator') as nodename, coalesce(n.nodeport, 0) as nodeport,
             r.success, r.result
        from pg_catalog.run_command_on_all_nodes($1) r
        left join pg_catalog.pg_dist_node n on n.nodeid = r.nodeid
       order by 1, 2
    $q$ using v_node_query
  loop
    if not v_node.success then
      raise exception using
        errcode = '55000',
        message = pg_catalog.format('the placements on node %s:%s could not be read: %s',
                                    v_node.nodename, v_node.nodeport, v_node.result),
        hint = 'Check that the node is reachable, then run it again.';
    end if;
    return query
      select v_node.nodename, v_node.nodeport, x."table", x.shardid, x.shard, x.kind, x.policy, x.fix
        from pg_catalog.json_to_recordset(v_node.result::json)
          as x("table" text, shardid bigint, shard text, kind text, policy text, fix text);
  end loop;
end
$fn$;
comment on function private.citus_placement_policy_drift() is
  'Profile citus, on a Citus cluster: one row per problem of a shard placement against its table (read on each node through run_command_on_all_nodes): kind bare (a helper call not in the (select f()) form private.citus_shard_policies() writes: a placement made by a shard move, split or rebalance), differs (condition, command, roles or permissive flag), no_policy, extra_policy, rls (not enabled and forced as on the table), missing (no shard relation); fix: the statements that mend it, to run on that node. Nothing without Citus; 55000 when a node cannot be read. Reported by neurant-db doctor --profile citus (citus.placement_policies).';
revoke execute on function private.citus_placement_policy_drift() from public, anon, authenticated;

create or replace function private.citus_shard_policies(p_initplan boolean default true) returns integer
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_table record;
  v_node record;
  v_failed text;
  v_stale jsonb;
  v_left text;
  v_by_node jsonb := '{}';
  v_done integer := 0;
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is null
     or pg_catalog.to_regprocedure('pg_catalog.run_command_on_placements(regclass, text, boolean)') is null then
    raise notice 'citus not installed (no pg_dist_partition, run_command_on_placements): no shard policies to alter';
    return 0;
  end if;
  if not p_initplan then
    -- the tables' own text on every placement (the rollback of seeds/3995), as before
    for v_table in
      execute $q$
        select p.polrelid::pg_catalog.regclass as rel,
               pg_catalog.string_agg(pg_catalog.format('alter policy %I on %%1$s', p.polname)
                 || coalesce(' using (' || pg_catalog.replace(pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                                             '%', '%%') || ')', '')
                 || coalesce(' with check (' || pg_catalog.replace(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
                                                                  '%', '%%') || ')', ''),
                 '; ' order by p.polname) as command
          from pg_catalog.pg_policy p
         where p.polrelid in (select d.logicalrelid from pg_catalog.pg_dist_partition d)
         group by p.polrelid
         order by p.polrelid::pg_catalog.regclass::text
      $q$
    loop
      execute 'select pg_catalog.string_agg(r.nodename || '':'' || r.nodeport || '' shard '' || r.shardid || '': '' || r.result, ''; '')
                 from pg_catalog.run_command_on_placements($1, $2) r where not r.success'
         into v_failed using v_table.rel, v_table.command;
      if v_failed is not null then
        raise exception using
          errcode = '55000',
          message = pg_catalog.format('the policies of %s could not be altered on every placement: %s', v_table.rel, v_failed),
          hint = 'Run select private.citus_shard_policies(false); again once every node is reachable: it alters each placement to the same text.';
      end if;
      v_done := v_done + 1;
    end loop;
    return v_done;
  end if;
  -- The placements not in the rewritten form (a move, split or rebalance made them from the
  -- tables' policies), by table: each one's policies altered on its node, every node's
  -- statements in one DO block (one statement: an error is not lost behind a first result).
  select coalesce(pg_catalog.jsonb_agg(distinct pg_catalog.jsonb_build_object(
           'node', d.nodename, 'port', d.nodeport, 'relation', d.relation, 'shard', d.shard)), '[]')
    into v_stale
    from private.citus_placement_policy_drift() d where d.kind in ('bare', 'differs');
  for v_table in
    execute $q$
      select p.polrelid::pg_catalog.regclass as rel,
             pg_catalog.string_agg(pg_catalog.format('alter policy %I on %%1$s', p.polname)
               || coalesce(' using (' || pg_catalog.replace(
                    private.citus_initplan_form(pg_catalog.pg_get_expr(p.polqual, p.polrelid)), '%', '%%') || ')', '')
               || coalesce(' with check (' || pg_catalog.replace(
                    private.citus_initplan_form(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)), '%', '%%') || ')', ''),
               '; ' order by p.polname) as command
        from pg_catalog.pg_policy p
       where p.polrelid in (select (e.value ->> 'relation')::pg_catalog.regclass
                              from pg_catalog.jsonb_array_elements($1) e)
       group by p.polrelid
       order by p.polrelid::pg_catalog.regclass::text
    $q$ using v_stale
  loop
    for v_node in
      select e.value ->> 'node' || ':' || (e.value ->> 'port') as node,
             pg_catalog.string_agg(pg_catalog.format(v_table.command, e.value ->> 'shard'), '; '
                                   order by e.value ->> 'shard') as statements
        from pg_catalog.jsonb_array_elements(v_stale) e
       where (e.value ->> 'relation')::pg_catalog.regclass = v_table.rel
       group by 1
    loop
      v_by_node := v_by_node || pg_catalog.jsonb_build_object(v_node.node,
        coalesce(v_by_node ->> v_node.node || '; ', '') || v_node.statements);
    end loop;
    v_done := v_done + 1;
  end loop;
  if v_done > 0 then
    execute $q$
      select pg_catalog.string_agg(r.node_name || ':' || r.node_port || ': ' || r.result, '; ')
        from pg_catalog.master_run_on_worker(
               array(select pg_catalog.split_part(k, ':', 1) from pg_catalog.jsonb_object_keys($1) k order by k),
               array(select pg_catalog.split_part(k, ':', 2)::integer from pg_catalog.jsonb_object_keys($1) k order by k),
               array(select 'do $neurant_rewrite$ begin ' || ($1 ->> k) || '; end $neurant_rewrite$'
                       from pg_catalog.jsonb_object_keys($1) k order by k),
               true) r
       where not r.success
    $q$ into v_failed using v_by_node;
    if v_failed is not null then
      raise exception using
        errcode = '55000',
        message = pg_catalog.format('the policies of the moved placements could not be altered: %s', v_failed),
        hint = 'Run select private.citus_shard_policies(); again once every node is reachable: it alters only what is left.';
    end if;
  end if;
  select pg_catalog.string_agg(pg_catalog.format('%s on %s:%s (%s %s)', d.shard, d.nodename, d.nodeport, d.kind,
                                                 d.policy), '; ' order by d.shard, d.policy)
    into v_left
    from private.citus_placement_policy_drift() d where d.kind in ('bare', 'differs');
  if v_left is not null then
    raise exception using
      errcode = '55000',
      message = pg_catalog.format('placements still differ from their tables after the rewrite: %s', v_left),
      hint = 'An ALTER POLICY keeps the command, roles and permissive flag: mend them with the statements neurant-db doctor --profile citus prints (citus.placement_policies).';
  end if;
  select pg_catalog.string_agg(pg_catalog.format('%s on %s:%s (%s%s)', d.shard, d.nodename, d.nodeport, d.kind,
                                                 ' ' || d.policy), '; ' order by d.shard, d.policy)
    into v_left
    from private.citus_placement_policy_drift() d where d.kind not in ('bare', 'differs');
  if v_left is not null then
    raise warning 'placements whose policies or row level security an ALTER POLICY cannot mend: %', v_left
      using hint = 'Run neurant-db doctor --profile citus: citus.placement_policies names the statements for each node.';
  end if;
  return v_done;
end
$$;
comment on function private.citus_shard_policies(boolean) is
  'Profile citus: alters the policies of the placements of Citus tables that private.citus_placement_policy_drift() lists as bare or different (a shard move, split or rebalance makes them from the table''s bare policies) to their table''s policies with each helper call wrapped in (select ...) (private.citus_initplan_form: one call per statement, as on the vanilla profile); with p_initplan false, every placement back to the table''s bare text. Idempotent; run after a shard move, split or rebalance and after a migration that creates or alters a policy of a Citus table. 55000 naming what failed or is left; a WARNING for a missing or extra policy or RLS off (doctor names their fix); a NOTICE and 0 without Citus. Returns how many tables it altered.';
revoke execute on function private.citus_shard_policies(boolean) from public, anon, authenticated;

select private.citus_shard_policies();
