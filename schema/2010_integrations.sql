-- Why: the integrations domain (architecture section 5) - channel and
-- third-party connections of a company, their encrypted credentials and the
-- API call log. Secrets never live in integrations.config (checked) and never
-- in plaintext: private.integration_credentials holds an AEAD envelope
-- encrypted by the application with a KMS-held key before it reaches the
-- database (works without pgcrypto, i.e. on the embedded server and on
-- Supabase alike). The plan's integration limit is enforced by trigger.

{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
create type public.integration_type as enum (
  'whatsapp', 'telegram', 'messenger', 'instagram', 'slack', 'webchat',
  'webhook', 'zendesk', 'hubspot', 'salesforce', 'email'
);
comment on type public.integration_type is 'Kind of external system an integration connects to (messaging channel, CRM/helpdesk, generic webhook).';

create type public.integration_status as enum ('pending', 'active', 'paused', 'error', 'disabled');
comment on type public.integration_status is
  'Lifecycle of an integration: pending (configured, not verified), active, paused (by the company), error (last calls failing), disabled (turned off).';

create type public.integration_direction as enum ('inbound', 'outbound');
comment on type public.integration_direction is 'Direction of a logged integration call: inbound (webhook received) or outbound (API call made).';

create type public.integration_log_status as enum ('success', 'error', 'timeout', 'rate_limited', 'rejected');
comment on type public.integration_log_status is
  'Outcome of a logged integration call: success, error (remote or local failure), timeout, rate_limited (429 / quota), rejected (signature or validation failed).';

create table public.integrations (
  company_id             uuid not null,
  id                     uuid not null default gen_random_uuid(),
  type                   public.integration_type not null,
  name                   text not null,
  config                 jsonb not null default '{}'::jsonb,
  status                 public.integration_status not null default 'pending',
  has_credentials        boolean not null default false,
  credentials_updated_at timestamptz,
  created_by             uuid,
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now(),
  constraint integrations_pkey primary key (company_id, id),
  constraint integrations_name_key unique (company_id, name),
  constraint integrations_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint integrations_created_by_fkey foreign key (company_id, created_by)
    references public.users (company_id, id) on delete no action,
  constraint integrations_name_length_check check (char_length(btrim(name)) between 1 and 120),
  constraint integrations_config_object_check
    check (jsonb_typeof(config) = 'object' and pg_column_size(config) <= 65536),
  constraint integrations_config_no_secrets_check
    check (not private.jsonb_has_secret_keys(config) and not private.jsonb_has_secret_values(config)),
  constraint integrations_credentials_consistency_check
    check (has_credentials = (credentials_updated_at is not null))
);

comment on table public.integrations is
  'A configured connection of a company to an external system. Non-secret settings only; credentials live encrypted in private.integration_credentials. Counts against the plan limit max_integrations.';
comment on column public.integrations.company_id is 'Tenant owning the integration.';
comment on column public.integrations.id is 'Integration id (unique within the company).';
comment on column public.integrations.type is 'Kind of external system (public.integration_type).';
comment on column public.integrations.name is 'Display name, 1-120 characters, unique per company.';
comment on column public.integrations.config is 'Non-secret settings as a JSON object (<= 64 kB); keys that look like secrets (token, secret, password, api_key, ...) and values shaped like secrets (JWTs, vendor keys, PEM keys, Bearer values, URLs with user:password@, long high-entropy strings) are rejected at any depth, arrays included.';
comment on column public.integrations.status is 'Lifecycle state (public.integration_status).';
comment on column public.integrations.has_credentials is 'True while encrypted credentials are stored for this integration (maintained by trigger on private.integration_credentials).';
comment on column public.integrations.credentials_updated_at is 'When the credentials were last set; null without credentials.';
comment on column public.integrations.created_by is 'public.users.id of the creator; cleared when that user is deleted; defaults to the caller.';
comment on column public.integrations.created_at is 'When the row was created.';
comment on column public.integrations.updated_at is 'Last change, maintained by private.touch_updated_at().';

create table private.integration_credentials (
  company_id     uuid not null,
  integration_id uuid not null,
  ciphertext     bytea not null,
  key_id         text not null,
  updated_at     timestamptz not null default now(),
  updated_by     uuid,
  constraint integration_credentials_pkey primary key (company_id, integration_id),
  constraint integration_credentials_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint integration_credentials_integration_fkey foreign key (company_id, integration_id)
    references public.integrations (company_id, id) on delete cascade,
  constraint integration_credentials_updated_by_fkey foreign key (company_id, updated_by)
    references public.users (company_id, id) on delete no action,
  -- Envelope v1: 0x01 || nonce (12 bytes) || AEAD ciphertext (>= 1 byte) || tag (16 bytes).
  constraint integration_credentials_envelope_format_check check (
    octet_length(ciphertext) between 30 and 65536 and get_byte(ciphertext, 0) = 1),
  constraint integration_credentials_key_id_format_check
    check (key_id ~ '^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,255}$')
);

comment on table private.integration_credentials is
  'Encrypted credentials of an integration, one envelope per integration. Encrypted by the application (AES-256-GCM with a data key from the KMS key named by key_id) before reaching the database; readable only by service_role; written by owner/administrador only through public.set_integration_credentials.'{{ doctor_notes('private.integration_credentials') }};
comment on column private.integration_credentials.company_id is 'Tenant owning the integration.';
comment on column private.integration_credentials.integration_id is 'Integration these credentials belong to (one row per integration).';
comment on column private.integration_credentials.ciphertext is 'Envelope v1: byte 0x01, 12-byte nonce, AEAD ciphertext, 16-byte tag (30 bytes .. 64 kB). Never plaintext; never returned to anon/authenticated.';
comment on column private.integration_credentials.key_id is 'Identifier of the KMS key (and version) that encrypted the envelope, e.g. kms:neurant/integrations/v3; drives re-encryption on rotation.';
comment on column private.integration_credentials.updated_at is 'When the envelope was last written.';
comment on column private.integration_credentials.updated_by is 'public.users.id of the last writer (null for service_role writes); cleared when that user is deleted.';

create table public.integration_logs (
  company_id     uuid not null,
  id             uuid not null default gen_random_uuid(),
  integration_id uuid not null,
  direction      public.integration_direction not null,
  operation      text not null,
  status         public.integration_log_status not null,
  http_status    smallint,
  latency_ms     integer not null default 0,
  error_message  text,
  request_id     text,
  created_at     timestamptz not null default now(),
  constraint integration_logs_pkey primary key (company_id, id),
  constraint integration_logs_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint integration_logs_integration_fkey foreign key (company_id, integration_id)
    references public.integrations (company_id, id) on delete cascade,
  constraint integration_logs_operation_length_check check (char_length(operation) between 1 and 120),
  constraint integration_logs_http_status_range_check check (http_status between 100 and 599),
  constraint integration_logs_latency_ms_range_check check (latency_ms >= 0),
  constraint integration_logs_error_message_length_check check (char_length(error_message) <= 4000),
  constraint integration_logs_request_id_length_check check (char_length(request_id) between 1 and 200)
);

comment on table public.integration_logs is
  'One row per API call made or webhook received by an integration (debugging and SLA). Written by service_role; readable by owner/administrador.';
comment on column public.integration_logs.company_id is 'Tenant owning the integration.';
comment on column public.integration_logs.id is 'Log row id.';
comment on column public.integration_logs.integration_id is 'Integration that made or received the call.';
comment on column public.integration_logs.direction is 'inbound or outbound.';
comment on column public.integration_logs.operation is 'Operation name, e.g. messages.send, webhook.message (1-120 characters).';
comment on column public.integration_logs.status is 'Outcome of the call (public.integration_log_status).';
comment on column public.integration_logs.http_status is 'HTTP status code of the call when there was one (100-599).';
comment on column public.integration_logs.latency_ms is 'Duration of the call in milliseconds (>= 0).';
comment on column public.integration_logs.error_message is 'Error text (<= 4000 characters); must not contain secrets.';
comment on column public.integration_logs.request_id is 'Correlation id of the call (ours or the remote one).';
comment on column public.integration_logs.created_at is 'When the call happened.';

-- ---------------------------------------------------------------------------
-- Trigger functions
-- ---------------------------------------------------------------------------

create function private.integrations_before_write() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    if new.created_by is null then
      new.created_by := private.get_current_user_id();
    end if;
  end if;
  return new;
end;
$$;
comment on function private.integrations_before_write() is
  'Trigger: defaults created_by to the caller (an integration never moves across companies: integrations_0_tenant_key).';

create function private.integrations_quota() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    perform private.consume_quota(new.company_id, 'current_integration_count', 1);
    return new;
  end if;
  if exists (select 1 from public.companies c where c.id = old.company_id) then
    perform private.consume_quota(old.company_id, 'current_integration_count', -1);
  end if;
  return old;
end;
$$;
comment on function private.integrations_quota() is
  'Trigger: keeps companies.current_integration_count exact and enforces the plan limit max_integrations (errcode NA001).';

create function private.integration_credentials_before_write() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'UPDATE' and new.integration_id is distinct from old.integration_id then
    raise exception using errcode = '22023',
      message = 'credentials cannot move to another integration',
      hint = 'Set the credentials of the other integration instead.';
  end if;
  new.updated_at := now();
  return new;
end;
$$;
comment on function private.integration_credentials_before_write() is
  'Trigger: stamps updated_at and keeps credentials bound to their integration.';

create function private.integration_credentials_sync() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'DELETE' and not exists (select 1 from public.companies where id = old.company_id) then
    return old;  -- the company is being deleted: its integrations go with it
  end if;
  if tg_op = 'DELETE' then
    update public.integrations
       set has_credentials = false, credentials_updated_at = null
     where company_id = old.company_id and id = old.integration_id;
    return old;
  end if;
  update public.integrations
     set has_credentials = true, credentials_updated_at = new.updated_at
   where company_id = new.company_id and id = new.integration_id;
  return new;
end;
$$;
comment on function private.integration_credentials_sync() is
  'Trigger: mirrors the presence and age of credentials into integrations.has_credentials / credentials_updated_at (the only credential facts visible to members).';

create function private.clear_user_integration_references() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  -- While the whole company is being deleted its rows go by cascade anyway; an
  -- UPDATE here would re-check their FK against the company already gone.
  if not exists (select 1 from public.companies where id = old.company_id) then
    -- credentials would go by cascade too, but later than this user's NO ACTION check
    delete from private.integration_credentials
     where company_id = old.company_id and updated_by = old.id;
    return old;
  end if;
  update public.integrations set created_by = null
   where company_id = old.company_id and created_by = old.id;
  update private.integration_credentials set updated_by = null
   where company_id = old.company_id and updated_by = old.id;
  return old;
end;
$$;
comment on function private.clear_user_integration_references() is
  'Trigger on public.users (before delete): clears integrations.created_by and integration_credentials.updated_by (FKs with company_id may not use SET NULL).';

create trigger integrations_before_write
  before insert or update on public.integrations
  for each row execute function private.integrations_before_write();
create trigger integrations_touch_updated_at
  before update on public.integrations
  for each row execute function private.touch_updated_at();
create trigger integrations_quota_insert
  after insert on public.integrations
  for each row execute function private.integrations_quota();
create trigger integrations_quota_delete
  after delete on public.integrations
  for each row execute function private.integrations_quota();
create trigger integration_credentials_before_write
  before insert or update on private.integration_credentials
  for each row execute function private.integration_credentials_before_write();
create trigger integration_credentials_sync
  after insert or update or delete on private.integration_credentials
  for each row execute function private.integration_credentials_sync();
create trigger users_clear_integration_references
  before delete on public.users
  for each row execute function private.clear_user_integration_references();

comment on trigger integrations_before_write on public.integrations is 'See private.integrations_before_write().';
comment on trigger integrations_touch_updated_at on public.integrations is 'Maintains updated_at.';
comment on trigger integrations_quota_insert on public.integrations is 'Counts a new integration against the plan.';
comment on trigger integrations_quota_delete on public.integrations is 'Gives back an integration slot.';
comment on trigger integration_credentials_before_write on private.integration_credentials is 'Stamps updated_at, binds credentials to their integration.';
comment on trigger integration_credentials_sync on private.integration_credentials is 'Mirrors has_credentials / credentials_updated_at into public.integrations.';
comment on trigger users_clear_integration_references on public.users is 'Clears integration references to a user before it is deleted.';

revoke execute on function private.integrations_before_write() from public, anon, authenticated;
revoke execute on function private.integrations_quota() from public, anon, authenticated;
revoke execute on function private.integration_credentials_before_write() from public, anon, authenticated;
revoke execute on function private.integration_credentials_sync() from public, anon, authenticated;
revoke execute on function private.clear_user_integration_references() from public, anon, authenticated;

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.integrations') }}

-- Audit trail (private.audit_row_change, schema/0050_audit_trail.sql).
create trigger integrations_audit
  after insert or update or delete on public.integrations
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at,credentials_updated_at,has_credentials');
comment on trigger integrations_audit on public.integrations is 'Audits integration configuration changes.';

-- Audit trail (private.audit_row_change, schema/0050_audit_trail.sql).
create trigger integration_credentials_audit
  after insert or update or delete on private.integration_credentials
  for each row execute function private.audit_row_change('company_id', 'company_id,integration_id', '');
comment on trigger integration_credentials_audit on private.integration_credentials is 'Audits credential writes (ciphertext redacted; key_id and times kept).';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('private.integration_credentials') }}

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.integration_logs') }}
