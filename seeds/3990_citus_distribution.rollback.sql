-- Why: undoes 3990_citus_distribution.sql (profile citus only, like it). Tables Citus
-- already distributed stay distributed: undistribute_table(...) each first when that
-- is the intent (docs/scale-out.md).
-- The database setting stays while Citus still holds tables: their triggers can be
-- neither changed nor dropped without it (the rollbacks of the earlier migrations).
-- Citus's views are readable by PUBLIC again, as the extension makes them.
do $$
declare
  v_view regclass;
begin
  foreach v_view in array array[pg_catalog.to_regclass('public.citus_tables'),
                                pg_catalog.to_regclass('public.citus_schemas')] loop
    if v_view is not null then
      execute pg_catalog.format('grant select on %s to public', v_view);
    end if;
  end loop;
end
$$;
do $$
declare
  v_placed boolean := false;
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null then
    execute 'select exists (select 1 from pg_catalog.pg_dist_partition)' into v_placed;
  end if;
  if v_placed then
    raise notice 'citus.enable_unsafe_triggers stays set for database %: Citus still holds its tables',
      pg_catalog.current_database();
    return;
  end if;
  execute pg_catalog.format('alter database %I reset citus.enable_unsafe_triggers',
    pg_catalog.current_database());
exception when insufficient_privilege then
  raise notice 'citus.enable_unsafe_triggers left set for database %: only its owner may reset it',
    pg_catalog.current_database();
end
$$;
drop function private.citus_distribute();
drop table private.citus_layout;
