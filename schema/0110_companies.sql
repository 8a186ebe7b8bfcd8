-- Companies: the tenant root. Its id is the tenant key (company_id) of every
-- other tenant table. It carries the subscription and the live usage counters
-- that plan limits are checked against without races (private.consume_quota).
create table public.companies (
  id uuid not null default gen_random_uuid(),
  name text not null,
  industry text,
  subscription_plan text not null default 'free',
  subscription_status public.subscription_status not null default 'active',
  monthly_message_limit integer,
  current_user_count integer not null default 0,
  current_chatbot_count integer not null default 0,
  current_document_count integer not null default 0,
  current_storage_bytes bigint not null default 0,
  current_integration_count integer not null default 0,
  current_pending_invitation_count integer not null default 0,
  created_by_auth_user_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint companies_pkey primary key (id),
  constraint companies_subscription_plan_fkey foreign key (subscription_plan)
    references public.subscription_plans (code) on delete restrict,
  constraint companies_created_by_auth_user_id_fkey foreign key (created_by_auth_user_id)
    references auth.users (id) on delete set null,
  constraint companies_name_length_check check (char_length(btrim(name)) between 1 and 200),
  constraint companies_industry_length_check check (char_length(industry) <= 100),
  constraint companies_monthly_message_limit_check check (monthly_message_limit >= 0),
  constraint companies_current_user_count_check check (current_user_count >= 0),
  constraint companies_current_chatbot_count_check check (current_chatbot_count >= 0),
  constraint companies_current_document_count_check check (current_document_count >= 0),
  constraint companies_current_storage_bytes_check check (current_storage_bytes >= 0),
  constraint companies_current_integration_count_check check (current_integration_count >= 0),
  constraint companies_current_pending_invitation_count_check check (current_pending_invitation_count >= 0)
);
comment on table public.companies is
  'Tenant root: one row per customer company. Members read it; owner/administrador update the profile (name, industry); plan, billing and counters are changed only by service_role and by the database itself.';
comment on column public.companies.id is 'Tenant key: the company_id of every tenant table.';
comment on column public.companies.name is 'Company display name (profile; owner/administrador may change it).';
comment on column public.companies.industry is 'Free-text industry (profile; owner/administrador may change it).';
comment on column public.companies.subscription_plan is 'Current plan (subscription_plans.code); changed only by service_role.';
comment on column public.companies.subscription_status is 'Billing state of the subscription; changed only by service_role.';
comment on column public.companies.monthly_message_limit is 'Per-company override of the plan''s monthly_message_limit (custom deals); null = the plan''s limit applies. See private.record_message_usage. Changed only by service_role.';
comment on column public.companies.current_user_count is 'Live count of public.users rows of the company (active or not); kept by triggers, limited by max_users.';
comment on column public.companies.current_chatbot_count is 'Live count of chatbots; kept by the chatbot domain''s triggers via private.consume_quota, limited by max_chatbots.';
comment on column public.companies.current_document_count is 'Live count of knowledge documents; kept via private.consume_quota, limited by max_documents.';
comment on column public.companies.current_storage_bytes is 'Live total document storage in bytes; kept via private.consume_quota, limited by max_storage_bytes.';
comment on column public.companies.current_integration_count is 'Live count of integrations; kept via private.consume_quota, limited by max_integrations.';
comment on column public.companies.current_pending_invitation_count is 'Live count of pending invitations; kept by triggers, limited by max_pending_invitations (and users + pending <= max_users).';
comment on column public.companies.created_by_auth_user_id is 'auth.users id of the identity that created the company (create_company_with_owner); cleared if that identity is deleted.';
comment on column public.companies.created_at is 'When the company was created.';
comment on column public.companies.updated_at is 'When the company row was last changed (private.touch_updated_at).';

create trigger companies_touch_updated_at
  before update on public.companies
  for each row execute function private.touch_updated_at();
comment on trigger companies_touch_updated_at on public.companies is 'Keeps updated_at exact.';

-- Audit trail (private.audit_row_change, schema/0050_audit_trail.sql).
create trigger companies_audit
  after insert or update or delete on public.companies
  for each row execute function private.audit_row_change('id', 'id', 'updated_at,current_*,last_*');
comment on trigger companies_audit on public.companies is 'Audits company changes (counters and updated_at alone are not audited).';
