-- Why: undoes 3310_archive_jobs.sql.
drop procedure public.job_archive(bigint, integer, integer, boolean, timestamptz);
drop function private.cold_export_preview(timestamptz);
drop function private.cold_export_keys(uuid, timestamptz, integer);
drop function private.archive_preview(timestamptz);
drop function private.archive_analytics_batch(timestamptz, integer);
drop function private.archive_integration_logs_batch(timestamptz, integer);
drop function private.archive_conversations_batch(timestamptz, integer);
drop function private.lock_conversation_rows(uuid, uuid[]);
