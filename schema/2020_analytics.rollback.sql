-- Why: undoes 2020_analytics.sql.
drop table if exists public.system_metrics;
drop table if exists public.analytics_daily;
