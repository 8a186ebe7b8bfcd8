-- Why: undoes 2710_integrations_analytics_indexes.sql.
drop index if exists public.system_metrics_metric_name_recorded_at_idx;
drop index if exists public.analytics_daily_company_day_idx;
drop index if exists public.integration_logs_company_created_at_idx;
drop index if exists public.integration_logs_company_integration_created_at_idx;
drop index if exists private.integration_credentials_company_updated_by_idx;
drop index if exists public.integrations_company_created_by_idx;
