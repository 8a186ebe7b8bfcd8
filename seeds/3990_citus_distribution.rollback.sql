-- Why: undoes 3990_citus_distribution.sql (profile citus only, like it). Tables Citus
-- already distributed stay distributed: undistribute_table(...) each first when that
-- is the intent (docs/scale-out.md).
do $$
begin
  execute pg_catalog.format('alter database %I reset citus.enable_unsafe_triggers',
    pg_catalog.current_database());
exception when insufficient_privilege then
  raise notice 'citus.enable_unsafe_triggers left set for database %: only its owner may reset it',
    pg_catalog.current_database();
end
$$;
drop function private.citus_distribute();
drop table private.citus_layout;
