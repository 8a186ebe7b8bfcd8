-- Supabase-compatible auth surface for plain PostgreSQL (profile 'vanilla'):
-- the roles anon / authenticated / service_role, the schema auth with a minimal
-- auth.users table and the claim readers auth.uid(), auth.role(), auth.email()
-- and auth.jwt(), read the way Supabase reads them, so that every policy of this
-- package runs unchanged on Supabase and on vanilla Postgres.
--
-- One deliberate difference (pooled sessions): Supabase's readers prefer the legacy
-- per-claim settings (request.jwt.claim.sub, ...) over request.jwt.claims. Through a
-- transaction pooler a session-level legacy value left by one client would then decide
-- the identity of every later request on that server connection, whatever claims that
-- request sets. Here the current request.jwt.claims win whenever they are set; the
-- legacy settings are read only when no request.jwt.claims is set at all (old PostgREST).
-- Profile supabase keeps the platform's own definitions: there the pooler must reset
-- the session between clients (docs/services.md, "Pooled connections").
{% if profile in ('vanilla', 'citus') %}
-- Roles are cluster-wide (shared by every database of the server): create them
-- only when missing, never alter or drop an existing one. The rollback of this
-- migration therefore leaves the roles in place and removes only the objects
-- of this database.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon {{ 'login' if profile == 'citus' else 'nologin' }} noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated {{ 'login' if profile == 'citus' else 'nologin' }} noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role {{ 'login' if profile == 'citus' else 'nologin' }} noinherit bypassrls;
  end if;
end
$$;

create schema auth;
comment on schema auth is
  'Supabase-compatible authentication schema, provided by neurant-db on plain PostgreSQL (profile vanilla). On Supabase the real one is used.';

create table auth.users (
  id uuid not null default gen_random_uuid(),
  aud text,
  role text,
  email text,
  email_confirmed_at timestamptz,
  phone text,
  raw_app_meta_data jsonb not null default '{}'::jsonb,
  raw_user_meta_data jsonb not null default '{}'::jsonb,
  is_anonymous boolean not null default false,
  last_sign_in_at timestamptz,
  banned_until timestamptz,
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint users_pkey primary key (id)
);
comment on table auth.users is
  'Minimal stand-in for Supabase''s auth.users (one row per identity that can sign in). Only the columns neurant-db reads are guaranteed.';
comment on column auth.users.id is 'Identity id; the JWT ''sub'' claim and auth.uid().';
comment on column auth.users.aud is 'JWT audience the identity signs in for (Supabase: ''authenticated'').';
comment on column auth.users.role is 'Database role the identity''s JWT carries (Supabase: ''authenticated'').';
comment on column auth.users.email is 'Sign-in email; the JWT ''email'' claim.';
comment on column auth.users.email_confirmed_at is 'When the email address was confirmed; null while unconfirmed.';
comment on column auth.users.phone is 'Sign-in phone number, if any.';
comment on column auth.users.raw_app_meta_data is 'App metadata (provider, ...), writable only by the backend; the JWT ''app_metadata'' claim.';
comment on column auth.users.raw_user_meta_data is 'User metadata (full_name, ...), writable by the user; the JWT ''user_metadata'' claim.';
comment on column auth.users.is_anonymous is 'True for anonymous sign-ins.';
comment on column auth.users.last_sign_in_at is 'Last successful sign-in.';
comment on column auth.users.banned_until is 'Sign-in refused until this instant, if set.';
comment on column auth.users.deleted_at is 'Soft-deletion instant, if set.';
comment on column auth.users.created_at is 'When the identity was created.';
comment on column auth.users.updated_at is 'When the identity was last changed.';

create function auth.uid() returns uuid
  language sql stable
as $$
  select case
           when nullif(current_setting('request.jwt.claims', true), '') is not null
             then (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')
           else nullif(current_setting('request.jwt.claim.sub', true), '')
         end::uuid
$$;
comment on function auth.uid() is
  'The caller''s auth.users.id from the JWT ''sub'' claim of request.jwt.claims; the legacy request.jwt.claim.sub only when request.jwt.claims is not set (unlike Supabase, so a stale session-level legacy value cannot override a request''s claims); null when anonymous.';

create function auth.role() returns text
  language sql stable
as $$
  select case
           when nullif(current_setting('request.jwt.claims', true), '') is not null
             then (current_setting('request.jwt.claims', true)::jsonb ->> 'role')
           else nullif(current_setting('request.jwt.claim.role', true), '')
         end::text
$$;
comment on function auth.role() is
  'The JWT ''role'' claim (anon, authenticated, service_role) of request.jwt.claims; the legacy request.jwt.claim.role only when request.jwt.claims is not set; null without a JWT.';

create function auth.email() returns text
  language sql stable
as $$
  select case
           when nullif(current_setting('request.jwt.claims', true), '') is not null
             then (current_setting('request.jwt.claims', true)::jsonb ->> 'email')
           else nullif(current_setting('request.jwt.claim.email', true), '')
         end::text
$$;
comment on function auth.email() is
  'The JWT ''email'' claim of request.jwt.claims (the legacy request.jwt.claim.email only when request.jwt.claims is not set); null without a JWT or email. Informative only: neurant-db binds identities to auth.users.email, never to this claim.';

create function auth.jwt() returns jsonb
  language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claims', true), ''),
    nullif(current_setting('request.jwt.claim', true), '')
  )::jsonb
$$;
comment on function auth.jwt() is
  'All JWT claims as jsonb (request.jwt.claims; the legacy request.jwt.claim only when request.jwt.claims is not set); null without a JWT.';

grant usage on schema auth to anon, authenticated, service_role;
revoke all on table auth.users from public, anon, authenticated;
grant all on table auth.users to service_role;
revoke execute on function auth.uid(), auth.role(), auth.email(), auth.jwt() from public;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;
{% else %}
-- profile '{{ profile }}': the platform provides the roles, the auth schema and
-- its functions; nothing to create.
{% endif %}
