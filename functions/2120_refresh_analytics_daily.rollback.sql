-- Why: undoes 2120_refresh_analytics_daily.sql.
drop procedure if exists public.refresh_analytics_daily(date);
