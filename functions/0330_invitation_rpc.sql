-- Business functions (RPC) of invitations: create (token returned once, only
-- its sha256 stored), accept (single use, expiring, bound to an email) and
-- revoke. Plan limits are enforced by the triggers of schema/0140_tenancy_rules.

{% from 'functions/_rpc.sql' import exposed_rpc, delegated_rpc, delegated_note -%}
create function {{ 'private.create_invitation(p_company_id uuid, ' if profile == 'citus' else 'public.create_invitation(' }}p_email text, p_role public.user_role)
returns table (invitation_id uuid, token text)
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  v_caller public.users%rowtype;
  v_email text := lower(btrim(p_email));
  v_token text;
  v_id uuid;
begin
  select * into v_caller from public.users u where {{ 'u.company_id = p_company_id and ' if profile == 'citus' }}u.auth_user_id = auth.uid() and u.is_active;
  if not found or v_caller.role not in ('owner', 'administrador') then
    raise exception using
      errcode = '42501',
      message = 'only an owner or administrador can invite members',
      hint = 'Ask an owner or administrador of your company.';
  end if;
  perform private.require_company_writable(v_caller.company_id);
  -- The role ceiling itself is private.guard_role_grant (schema/0140), on the insert below.
  if p_role is null then
    raise exception using errcode = '22023', message = 'an invitation needs a role', hint = 'Pass one of operador, supervisor, administrador.';
  end if;
  if v_email is null or v_email !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' or char_length(v_email) > 320 then
    raise exception using errcode = '22023', message = format('invalid email %L', p_email);
  end if;
  if exists (select 1 from public.users u where u.company_id = v_caller.company_id and u.email = v_email) then
    raise exception using
      errcode = '22023',
      message = format('%s is already a member of the company', v_email),
      hint = 'Change the member''s role instead.';
  end if;

  -- Pending invitations past their expiry stop holding a seat.
  update public.user_invitations i
     set status = 'expired'
   where i.company_id = v_caller.company_id and i.status = 'pending' and i.expires_at <= now();

  if exists (select 1 from public.user_invitations i
        where i.company_id = v_caller.company_id and lower(i.email) = v_email and i.status = 'pending') then
    raise exception using
      errcode = '23505',
      message = format('a pending invitation for %s already exists', v_email),
      hint = 'Revoke it first (revoke_invitation) or wait for it to be accepted.';
  end if;

  -- 2 x 122 random bits of gen_random_uuid(): 244 bits, 64 hex characters.
  v_token := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
  insert into public.user_invitations (company_id, email, role, token_hash, invited_by)
  values (v_caller.company_id, v_email, p_role, sha256(convert_to(v_token, 'UTF8')), v_caller.id)
  returning id into v_id;

  invitation_id := v_id;
  token := v_token;
  return next;
end
$$;
{%- if profile == 'citus' %}
comment on function private.create_invitation(uuid, text, public.user_role) is
  'Profile citus: the body of public.create_invitation for the caller''s company p_company_id (refused like an outsider when the caller is not an active owner/administrador of it), distributed by p_company_id with force_delegation (seeds/3990): run on the worker holding the company, over the caller''s connection.';
{{ delegated_rpc('create_invitation', 'p_email text, p_role public.user_role', [('p_email', 'text'), ('p_role', 'public.user_role')], 'table (invitation_id uuid, token text)', 'table') }}
{%- endif %}
comment on function public.create_invitation(text, public.user_role) is
  'RPC: an owner/administrador invites an email with a role strictly below their own. Returns the invitation id and the token (shown once; only sha256(token) is stored). Limited by max_pending_invitations and max_users (members + pending). Errors: 42501 caller/role not allowed; NA002 company read-only (suspended/canceled); 22023 bad email or already a member; 23505 pending invitation exists; NA001 plan limit.'{{ exposed_rpc() if profile != 'citus' else delegated_note('create_invitation') }};

create function public.accept_invitation(p_token text) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  v_auth_uid uuid := auth.uid();
  v_email text;
  v_confirmed_at timestamptz;
  v_meta jsonb;
  v_inv public.user_invitations%rowtype;
  v_user_id uuid;
begin
  if v_auth_uid is null then
    raise exception using errcode = '42501', message = 'not authenticated', hint = 'Sign in with the invited email first.';
  end if;
  if p_token is null or btrim(p_token) = '' then
    raise exception using errcode = '22023', message = 'invitation token is missing';
  end if;
  select * into v_inv from public.user_invitations i
   where i.token_hash = sha256(convert_to(btrim(p_token), 'UTF8')){% if profile == 'citus' %};
  -- Citus: found across the shards without a lock (a multi-shard statement takes none,
  -- 0A000), then locked on its company's shard and read again.
  select * into v_inv from public.user_invitations i
   where i.company_id = v_inv.company_id and i.id = v_inv.id{% endif %}
     for update;
  if not found then
    raise exception using errcode = '22023', message = 'invitation not found', hint = 'Check the link or ask for a new invitation.';
  end if;
  if v_inv.status = 'accepted' then
    raise exception using errcode = '22023', message = 'invitation has already been used', hint = 'An invitation can be accepted once; ask for a new one.';
  elsif v_inv.status = 'revoked' then
    raise exception using errcode = '22023', message = 'invitation has been revoked', hint = 'Ask for a new invitation.';
  elsif v_inv.status = 'expired' or v_inv.expires_at <= now() then
    raise exception using errcode = '22023', message = 'invitation has expired', hint = 'Ask for a new invitation.';
  end if;

  -- Bound to the identity's own record, never to the JWT: the email claim is whatever
  -- the token says (and a token can outlive an email change), auth.users.email is what
  -- the auth service verified; only a confirmed address proves the invitee holds it.
  select lower(u.email), u.email_confirmed_at, u.raw_user_meta_data into v_email, v_confirmed_at, v_meta
    from auth.users u where u.id = v_auth_uid;
  if not found or v_email is distinct from v_inv.email then
    raise exception using
      errcode = '42501',
      message = 'invitation was issued to another email address',
      hint = 'Sign in with the invited email.';
  end if;
  if v_confirmed_at is null then
    raise exception using
      errcode = '42501',
      message = 'the invited email address is not confirmed',
      hint = 'Confirm the email address (the link in the sign-up email), then accept the invitation again.';
  end if;
  if exists (select 1 from {{ 'private.memberships' if profile == 'citus' else 'public.users' }} m where m.auth_user_id = v_auth_uid) then
    raise exception using
      errcode = '42501',
      message = 'caller already belongs to a company',
      hint = 'An identity can be a member of one company only; leave the current company first.';
  end if;

  -- The grant is only as good as its grantor today: private.guard_role_grant
  -- (schema/0140) refuses the insert below when the inviter has since been removed,
  -- deactivated or demoted to the invited rank or below.
  if v_inv.invited_by is null then
    raise exception using
      errcode = '42501',
      message = 'the member who sent this invitation can no longer grant this role',
      hint = 'Ask an owner or administrador for a new invitation.';
  end if;

  perform private.require_company_writable(v_inv.company_id);{% if profile == 'citus' %}
  -- Profile citus: the membership copy first (users_membership_copy checks the row against it).
  v_user_id := gen_random_uuid();
  insert into private.memberships (auth_user_id, company_id, id, role, is_active)
  values (v_auth_uid, v_inv.company_id, v_user_id, v_inv.role, true);{% endif %}
  insert into public.users (company_id, {{ 'id, ' if profile == 'citus' }}auth_user_id, email, full_name, role, invited_by)
  values (v_inv.company_id, {{ 'v_user_id, ' if profile == 'citus' }}v_auth_uid, v_email, nullif(btrim(v_meta ->> 'full_name'), ''), v_inv.role, v_inv.invited_by)
  returning id into v_user_id;

  update public.user_invitations i
     set status = 'accepted', accepted_at = now(), accepted_by = v_user_id
   where i.company_id = v_inv.company_id and i.id = v_inv.id;
  return v_user_id;
end
$$;
comment on function public.accept_invitation(text) is
  'RPC: the invited identity (its auth.users email - not the JWT email claim - must match, case-insensitively, and be confirmed) joins the company with the invited role, and the invitation becomes accepted, atomically and once. Returns the new public.users.id. Errors: 42501 not authenticated / other email / email not confirmed / already a member; NA002 the company is read-only (suspended/canceled); 22023 unknown, used, revoked or expired token; NA001 user limit.'{{ exposed_rpc() }};

create function {{ 'private.revoke_invitation(p_company_id uuid, ' if profile == 'citus' else 'public.revoke_invitation(' }}p_invitation_id uuid) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  v_caller public.users%rowtype;
  v_inv public.user_invitations%rowtype;
begin
  select * into v_caller from public.users u where {{ 'u.company_id = p_company_id and ' if profile == 'citus' }}u.auth_user_id = auth.uid() and u.is_active;
  if not found or v_caller.role not in ('owner', 'administrador') then
    raise exception using
      errcode = '42501',
      message = 'only an owner or administrador can revoke invitations',
      hint = 'Ask an owner or administrador of your company.';
  end if;
  perform private.require_company_writable(v_caller.company_id);
  select * into v_inv from public.user_invitations i
   where i.company_id = v_caller.company_id and i.id = p_invitation_id
     for update;
  if not found then
    raise exception using errcode = '22023', message = 'invitation not found';
  end if;
  if public.role_rank(v_inv.role) >= public.role_rank(v_caller.role) then
    raise exception using
      errcode = '42501',
      message = format('a %s cannot revoke an invitation for a %s', v_caller.role, v_inv.role),
      hint = 'Ask a higher-ranked member.';
  end if;
  if v_inv.status <> 'pending' then
    raise exception using
      errcode = '22023',
      message = format('invitation is already %s', v_inv.status),
      hint = 'Only a pending invitation can be revoked.';
  end if;
  update public.user_invitations i
     set status = 'revoked', revoked_at = now(), revoked_by = v_caller.id
   where i.company_id = v_inv.company_id and i.id = v_inv.id;
end
$$;
{%- if profile == 'citus' %}
comment on function private.revoke_invitation(uuid, uuid) is
  'Profile citus: the body of public.revoke_invitation for the caller''s company p_company_id (refused like an outsider when the caller is not an active owner/administrador of it), distributed by p_company_id with force_delegation (seeds/3990): run on the worker holding the company, over the caller''s connection.';
{{ delegated_rpc('revoke_invitation', 'p_invitation_id uuid', [('p_invitation_id', 'uuid')], 'void', 'void') }}
{%- endif %}
comment on function public.revoke_invitation(uuid) is
  'RPC: an owner/administrador revokes a pending invitation of their company for a role below their own; it can no longer be accepted and frees its seat. Errors: 42501 caller not allowed; NA002 company read-only (suspended/canceled); 22023 not found / not pending.'{{ exposed_rpc() if profile != 'citus' else delegated_note('revoke_invitation') }};

revoke execute on function public.create_invitation(text, public.user_role) from public, anon;
revoke execute on function public.accept_invitation(text) from public, anon;
revoke execute on function public.revoke_invitation(uuid) from public, anon;
grant execute on function public.create_invitation(text, public.user_role) to authenticated;
grant execute on function public.accept_invitation(text) to authenticated;
grant execute on function public.revoke_invitation(uuid) to authenticated;
{%- if profile == 'citus' %}
revoke execute on function private.create_invitation(uuid, text, public.user_role), private.revoke_invitation(uuid, uuid) from public, anon;
grant execute on function private.create_invitation(uuid, text, public.user_role), private.revoke_invitation(uuid, uuid) to authenticated;
{%- endif %}
