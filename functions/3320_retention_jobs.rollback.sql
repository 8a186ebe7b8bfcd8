-- Why: undoes 3320_retention_jobs.sql.
drop procedure public.job_retention(bigint, integer, integer, boolean, timestamptz);
drop function private.retention_preview(timestamptz);
drop function private.retention_batch(timestamptz, integer);
drop function private.purge_audit_logs(timestamptz, integer);
