-- Why: undoes 3995_citus_shard_policies.sql (profile citus only, like it): every placement's
-- policies back to its table's text (the bare calls), then the two functions.
select private.citus_shard_policies(false);
drop function private.citus_shard_policies(boolean);
drop function private.citus_initplan_form(text);
