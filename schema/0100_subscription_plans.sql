-- Subscription plans: the global reference table (Citus reference table) with
-- the limits that the counters of public.companies are checked against.
create table public.subscription_plans (
  code text not null,
  name text not null,
  description text,
  monthly_price_cents integer,
  max_users integer,
  max_chatbots integer,
  max_pending_invitations integer,
  max_documents integer,
  max_storage_bytes bigint,
  max_integrations integer,
  monthly_message_limit integer,
  is_public boolean not null default true,
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Data lifecycle, per plan (data, not render-time settings): see schema/3000_lifecycle_schema.sql.
  archive_after_days integer not null default 365,
  cold_after_days integer not null default 1095,
  delete_after_days integer not null default 2555,
  constraint subscription_plans_pkey primary key (code),
  constraint subscription_plans_code_format_check check (code ~ '^[a-z][a-z0-9_]{1,39}$'),
  constraint subscription_plans_name_length_check check (char_length(btrim(name)) between 1 and 100),
  constraint subscription_plans_description_length_check check (char_length(description) <= 2000),
  constraint subscription_plans_price_check check (monthly_price_cents >= 0),
  constraint subscription_plans_max_users_check check (max_users >= 1),
  constraint subscription_plans_max_chatbots_check check (max_chatbots >= 0),
  constraint subscription_plans_max_pending_invitations_check check (max_pending_invitations >= 0),
  constraint subscription_plans_max_documents_check check (max_documents >= 0),
  constraint subscription_plans_max_storage_bytes_check check (max_storage_bytes >= 0),
  constraint subscription_plans_max_integrations_check check (max_integrations >= 0),
  constraint subscription_plans_monthly_message_limit_check check (monthly_message_limit >= 0),
  constraint subscription_plans_archive_after_days_check check (archive_after_days between 1 and 36500),
  constraint subscription_plans_cold_after_days_check check (cold_after_days > archive_after_days and cold_after_days <= 36500),
  constraint subscription_plans_delete_after_days_check check (delete_after_days > cold_after_days and delete_after_days <= 36500)
);
comment on table public.subscription_plans is
  'Subscription plans and their limits (global reference data, no tenant key). A null limit means unlimited. Readable by everyone, written only by service_role.';
comment on column public.subscription_plans.code is 'Stable plan key (free, starter, ...), referenced by companies.subscription_plan.';
comment on column public.subscription_plans.name is 'Display name of the plan.';
comment on column public.subscription_plans.description is 'Marketing description of the plan.';
comment on column public.subscription_plans.monthly_price_cents is 'Monthly list price in cents (USD); null = custom quote.';
comment on column public.subscription_plans.max_users is 'Maximum members (public.users rows) of a company; pending invitations also hold a seat. Null = unlimited. At least 1 (the owner).';
comment on column public.subscription_plans.max_chatbots is 'Maximum chatbots of a company; null = unlimited.';
comment on column public.subscription_plans.max_pending_invitations is 'Maximum pending invitations of a company at a time; null = unlimited.';
comment on column public.subscription_plans.max_documents is 'Maximum knowledge documents of a company; null = unlimited.';
comment on column public.subscription_plans.max_storage_bytes is 'Maximum total document storage of a company, in bytes; null = unlimited.';
comment on column public.subscription_plans.max_integrations is 'Maximum channel integrations of a company; null = unlimited.';
comment on column public.subscription_plans.monthly_message_limit is 'Messages per calendar month per company; null = unlimited. A company can override it (companies.monthly_message_limit).';
comment on column public.subscription_plans.is_public is 'Listed to everyone (anon included); non-public plans are custom deals, visible only to companies on them.';
comment on column public.subscription_plans.sort_order is 'Display order, ascending.';
comment on column public.subscription_plans.created_at is 'When the plan was created.';
comment on column public.subscription_plans.updated_at is 'When the plan was last changed (private.touch_updated_at).';
comment on column public.subscription_plans.archive_after_days is
  'Lifecycle: a closed conversation (and integration logs, daily analytics) older than this many days is moved to the archive schema by public.job_archive(). Default 365 (1 year).';
comment on column public.subscription_plans.cold_after_days is
  'Lifecycle: archived data older than this many days is exported to files and removed from the database by `neurant-db jobs run cold-export`. Default 1095 (3 years); greater than archive_after_days.';
comment on column public.subscription_plans.delete_after_days is
  'Lifecycle: data older than this many days is deleted wherever it still is in the database by public.job_retention() (compliance retention). Default 2555 (7 years); greater than cold_after_days. '
  'Audit logs are never purged before 2555 days whatever the plan says.';


create trigger subscription_plans_touch_updated_at
  before update on public.subscription_plans
  for each row execute function private.touch_updated_at();
comment on trigger subscription_plans_touch_updated_at on public.subscription_plans is 'Keeps updated_at exact.';
