-- Users: the members of a company (one membership per auth identity), their
-- role in the company's hierarchy and the one-owner-per-company key.
{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
create table public.users (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  auth_user_id uuid not null,
  email text not null,
  full_name text,
  role public.user_role not null default 'operador',
  is_owner boolean generated always as (role = 'owner') stored,
  is_active boolean not null default true,
  invited_by uuid,
  last_seen_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint users_pkey primary key (company_id, id),
  constraint users_auth_user_id_key unique ({{ 'company_id, ' if profile == 'citus' }}auth_user_id),
  constraint users_company_id_email_key unique (company_id, email),
  constraint users_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint users_auth_user_fkey foreign key (auth_user_id)
    references auth.users (id) on delete {{ 'restrict' if profile == 'citus' else 'cascade' }},
  constraint users_invited_by_fkey foreign key (company_id, invited_by)
    references public.users (company_id, id) on delete no action,
  constraint users_email_format_check check (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' and char_length(email) <= 320),
  constraint users_email_lowercase_check check (email = lower(email)),
  constraint users_full_name_length_check check (char_length(full_name) <= 200),
  constraint users_invited_by_not_self_check check (invited_by <> id)
);
comment on table public.users is
  'Members of a company. One row per auth identity (auth_user_id is unique: one membership per user). Rows are created by create_company_with_owner / accept_invitation (or service_role); removed by owner/administrador for lower ranks.'{{ doctor_notes('public.users') }};
comment on column public.users.company_id is 'Tenant key (companies.id).';
comment on column public.users.id is 'Member id, unique within the company; what get_current_user_id() returns.';
comment on column public.users.auth_user_id is 'The auth.users identity of this member; unique across companies (one membership per identity). Note: a global unique key, so under Citus this table stays local/reference-like for the lookup.';
{% if profile != 'citus' -%}
comment on constraint users_auth_user_fkey on public.users is
  'Deleting a member''s login (Supabase''s dashboard, the auth service, service_role) removes the membership as removing the member does: references cleared, history kept, audited; the owner''s login is refused while the company exists (users_require_owner_on_delete: transfer ownership or delete the company first). Profile citus: restrict (public.remove_member first).';
{% endif -%}
comment on column public.users.email is 'Lower-case email of the member (copied from auth at join time); unique within the company.';
comment on column public.users.full_name is 'Display name; the member may change their own.';
comment on column public.users.role is 'Role in the company (owner > administrador > supervisor > operador). Changed only by a higher-ranked member, never to a rank at or above the changer''s; ownership moves only via transfer_ownership.';
comment on column public.users.is_owner is 'Generated: role = ''owner''.';
comment on column public.users.is_active is 'Inactive members keep their seat but get no access (the context helpers ignore them).';
comment on column public.users.invited_by is 'Member who invited this one (same company); cleared by a before-delete trigger when that member is removed.';
comment on column public.users.last_seen_at is 'Last activity, set by the backend.';
comment on column public.users.created_at is 'When the member joined.';
comment on column public.users.updated_at is 'When the member row was last changed (private.touch_updated_at).';

-- Rule: exactly one owner per company (at most one here; at least one is
-- checked at the end of every statement by users_owner_required_* triggers).
create unique index users_one_owner_per_company_key on public.users (company_id) where role = 'owner';
comment on index public.users_one_owner_per_company_key is 'Rule: a company can never have two owners.';

create trigger users_touch_updated_at
  before update on public.users
  for each row execute function private.touch_updated_at();
comment on trigger users_touch_updated_at on public.users is 'Keeps updated_at exact.';

comment on constraint users_auth_user_id_key on public.users is
  'One company membership per auth user: get_user_company_id() resolves the tenant from auth.uid() alone.'{{ doctor_notes('public.users', 'users_auth_user_id_key') }};

-- Audit trail (private.audit_row_change, schema/0050_audit_trail.sql).
create trigger users_audit
  after insert or update or delete on public.users
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at,last_*');
comment on trigger users_audit on public.users is 'Audits membership and role changes.';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.users') }}
