-- Why: undoes 4500_citus_shard_policies_moved.sql (profile citus only, like it): restores
-- private.citus_shard_policies(boolean) as seeds/3995_citus_shard_policies.sql defines it
-- (every placement of every table altered), then drops private.citus_placement_policy_drift().
create or replace function private.citus_shard_policies(p_initplan boolean default true) returns integer
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
drop function private.citus_placement_policy_drift();
