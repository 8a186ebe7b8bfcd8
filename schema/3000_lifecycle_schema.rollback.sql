-- Why: undoes 3000_lifecycle_schema.sql (archive schema and its tables, legal holds,
-- job and export ledgers). Archived rows are dropped
-- with their tables: export them first (`neurant-db jobs run cold-export`).
{% from 'schema/_legal_hold.sql' import drop_legal_hold_triggers -%}
{{ drop_legal_hold_triggers() }}
drop table archive.analytics_archived;
drop table archive.integration_logs_archived;
drop table archive.knowledge_queries_archived;
drop table archive.hitl_escalations_archived;
drop table archive.message_reactions_archived;
drop table archive.messages_archived;
drop table archive.conversations_archived;
drop schema archive;

drop table private.cold_exports;
drop table private.job_runs;

-- cascade: the triggers above are gone; on a Citus cluster, shards that Citus has not yet
-- cleaned up after the distribution step was undone (deferred shard cleanup) still carry
-- copies of them, which go with the function.
drop function private.legal_hold_guard() cascade;
drop table public.legal_holds;
drop function private.legal_holds_guard();
drop function private.legal_holds_check_conversation();
