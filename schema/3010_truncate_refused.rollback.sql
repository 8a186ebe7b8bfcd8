-- Why: undoes 3010_truncate_refused.sql.
{% from 'schema/_truncate_refused.sql' import drop_truncate_refused_triggers -%}
{{ drop_truncate_refused_triggers() }}
-- cascade: the triggers above are gone; on a Citus cluster, shards that Citus has not yet
-- cleaned up after the distribution step was undone (deferred shard cleanup) still carry
-- copies of them, which go with the function (as schema/3000's legal_hold_guard).
drop function private.refuse_truncate() cascade;
