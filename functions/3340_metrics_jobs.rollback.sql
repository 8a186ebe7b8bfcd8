-- Why: undoes 3340_metrics_jobs.sql.
drop procedure public.job_metrics(bigint, boolean);
drop function private.collect_system_metrics();
