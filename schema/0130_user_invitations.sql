-- Invitations to join a company: single-use, expiring, bound to an email, with
-- the token stored only as its sha256 hash.
{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
create table public.user_invitations (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  email text not null,
  role public.user_role not null,
  token_hash bytea not null,
  invited_by uuid,
  status public.invitation_status not null default 'pending',
  accepted_at timestamptz,
  accepted_by uuid,
  revoked_at timestamptz,
  revoked_by uuid,
  expires_at timestamptz not null default now() + interval '7 days',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint user_invitations_pkey primary key (company_id, id),
  constraint user_invitations_token_hash_key unique ({{ 'company_id, ' if profile == 'citus' }}token_hash),
  constraint user_invitations_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint user_invitations_invited_by_fkey foreign key (company_id, invited_by)
    references public.users (company_id, id) on delete no action,
  constraint user_invitations_accepted_by_fkey foreign key (company_id, accepted_by)
    references public.users (company_id, id) on delete no action,
  constraint user_invitations_revoked_by_fkey foreign key (company_id, revoked_by)
    references public.users (company_id, id) on delete no action,
  constraint user_invitations_email_format_check check (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' and char_length(email) <= 320),
  constraint user_invitations_email_lowercase_check check (email = lower(email)),
  constraint user_invitations_role_not_owner_check check (role <> 'owner'),
  constraint user_invitations_token_hash_length_check check (octet_length(token_hash) = 32),
  constraint user_invitations_expiry_check check (expires_at > created_at),
  constraint user_invitations_accepted_state_check check ((status = 'accepted') = (accepted_at is not null)),
  constraint user_invitations_revoked_state_check check ((status = 'revoked') = (revoked_at is not null))
);
comment on table public.user_invitations is
  'Invitations to join a company with a role below the inviter''s. Created by create_invitation (the token is returned once, only its sha256 is stored), consumed once by accept_invitation, cancelled by revoke_invitation. Readable by owner/administrador.'{{ doctor_notes('public.user_invitations') }};
comment on column public.user_invitations.company_id is 'Tenant key (companies.id).';
comment on column public.user_invitations.id is 'Invitation id, unique within the company.';
comment on column public.user_invitations.email is 'Lower-case email the invitation is bound to; only the identity with this email can accept it.';
comment on column public.user_invitations.role is 'Role the invitee gets; never owner, always below the inviter''s role.';
comment on column public.user_invitations.token_hash is 'sha256 of the invitation token (32 bytes); the token itself is never stored. Not readable by clients.';
comment on column public.user_invitations.invited_by is 'Member who created the invitation; cleared if that member is removed.';
comment on column public.user_invitations.status is 'pending -> accepted | revoked | expired (final states). One pending invitation per company and email.';
comment on column public.user_invitations.accepted_at is 'When it was accepted (set iff status = accepted).';
comment on column public.user_invitations.accepted_by is 'The member created by accepting it; cleared if that member is removed.';
comment on column public.user_invitations.revoked_at is 'When it was revoked (set iff status = revoked).';
comment on column public.user_invitations.revoked_by is 'Member who revoked it; cleared if that member is removed.';
comment on column public.user_invitations.expires_at is 'After this instant it cannot be accepted (default: 7 days after creation).';
comment on column public.user_invitations.created_at is 'When the invitation was created.';
comment on column public.user_invitations.updated_at is 'When the invitation was last changed (private.touch_updated_at).';

-- Rule: one pending invitation per company and email.
create unique index user_invitations_one_pending_per_email_key
  on public.user_invitations (company_id, lower(email)) where status = 'pending';
comment on index public.user_invitations_one_pending_per_email_key is 'Rule: at most one pending invitation per company and email.';

create trigger user_invitations_touch_updated_at
  before update on public.user_invitations
  for each row execute function private.touch_updated_at();
comment on trigger user_invitations_touch_updated_at on public.user_invitations is 'Keeps updated_at exact.';

comment on constraint user_invitations_token_hash_key on public.user_invitations is
  'A token hash identifies one invitation across all companies.'{{ doctor_notes('public.user_invitations', 'user_invitations_token_hash_key') }};

-- Audit trail (private.audit_row_change, schema/0050_audit_trail.sql).
create trigger user_invitations_audit
  after insert or update or delete on public.user_invitations
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at');
comment on trigger user_invitations_audit on public.user_invitations is 'Audits invitations (token_hash redacted).';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.user_invitations') }}
