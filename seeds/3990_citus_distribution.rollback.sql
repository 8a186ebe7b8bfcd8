-- Why: undoes 3990_citus_distribution.sql (profile citus only, like it). Tables Citus
-- already distributed stay distributed: undistribute_table(...) each first when that
-- is the intent (docs/scale-out.md).
drop function private.citus_distribute();
drop table private.citus_layout;
