-- Why: undoes 3300_lifecycle_job_framework.sql.
drop function private.batch_rows(jsonb);
drop function private.job_progress(bigint, text, jsonb, jsonb);
drop function private.job_finish(bigint, text, text);
drop function private.job_start(text, jsonb, boolean);
drop function private.job_session_alive(integer, timestamptz);
drop index private.job_runs_one_running_per_lock_key;
drop function private.job_lock_key(text);
drop function private.jsonb_add_counts(jsonb, jsonb);
drop function private.lifecycle_cutoffs(timestamptz);
drop function private.lifecycle_clock(timestamptz);
drop function private.lifecycle_require_privileges();
drop function private.job_require_trusted_path(name[]);
