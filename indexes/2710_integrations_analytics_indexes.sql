-- Why: indexes of integrations and analytics: FK columns with company_id first
-- and the time-series access paths (latest log lines of an integration, a
-- company's dashboards over a date range, one metric's series).

create index integrations_company_created_by_idx
  on public.integrations (company_id, created_by) where created_by is not null;
comment on index public.integrations_company_created_by_idx is 'FK (company_id, created_by) -> users; used when a user is deleted.';

create index integration_credentials_company_updated_by_idx
  on private.integration_credentials (company_id, updated_by) where updated_by is not null;
comment on index private.integration_credentials_company_updated_by_idx is 'FK (company_id, updated_by) -> users; used when a user is deleted.';

create index integration_logs_company_integration_created_at_idx
  on public.integration_logs (company_id, integration_id, created_at desc);
comment on index public.integration_logs_company_integration_created_at_idx is 'FK to integrations; latest calls of one integration.';
create index integration_logs_company_created_at_idx
  on public.integration_logs (company_id, created_at desc);
comment on index public.integration_logs_company_created_at_idx is 'Latest calls of a company across integrations; retention by age.';

create index analytics_daily_company_day_idx
  on public.analytics_daily (company_id, day desc);
comment on index public.analytics_daily_company_day_idx is 'Company-wide dashboards over a date range (the primary key serves per-chatbot ranges).';

create index system_metrics_metric_name_recorded_at_idx
  on public.system_metrics (metric_name, recorded_at desc);
comment on index public.system_metrics_metric_name_recorded_at_idx is 'Time series of one metric.';
