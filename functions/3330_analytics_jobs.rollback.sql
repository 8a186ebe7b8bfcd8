-- Why: undoes 3330_analytics_jobs.sql.
drop procedure public.job_analytics(bigint, integer, date, date, boolean);
drop procedure public.refresh_analytics_daily(date);
