-- Invitation tokens: stored only as hashes, single use, expiring, bound to the invited
-- email, revocable, never usable across companies (attacks: guess, replay, hash as
-- token, case folding, cross-company use); exact pending counters and the plan's
-- user / pending-invitation limits. Who may invite which role is 0205_role_hierarchy.sql.
begin;
select plan(54);

create temp table t_tokens (label text primary key, invitation_id uuid, token text);
grant all on t_tokens to public;
select tests.new_auth_user('New.Operator@Example.com', '{"full_name": "Nora New"}'), tests.new_auth_user('expired.invitee@example.com'),
       tests.new_auth_user('free.owner@example.com'), tests.new_auth_user('free.member@example.com'),
       tests.new_auth_user('tiny.owner@example.com');

-- rule: invitation-tokens (docs/rules.md)
-- Token hashes are not readable (privileges) ---------------------------------------------
select ok(not has_column_privilege('authenticated', 'public.user_invitations', 'token_hash', 'select'),
    'token hashes are not readable by authenticated');
select is_empty($$
  select r || ' ' || pr.p from unnest(array['anon', 'authenticated']) r
   cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) pr(p)
   where has_column_privilege(r, 'public.user_invitations', 'token_hash', pr.p) $$,
  'anon and authenticated cannot read, write or reference user_invitations.token_hash');
select is(tests.attempt_as('service_role', $$ insert into public.user_invitations (company_id, email, role, token_hash, invited_by)
  values (tests.company_id('A'), 'z@example.com', 'operador', sha256('zz'::bytea), tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "user_invitations" violates foreign key constraint "user_invitations_invited_by_fkey"',
  'an invitation cannot name another company''s member as inviter, even for service_role');

-- Token attacks (own invitations, cleaned up afterwards) ---------------------------------
create temp table t_tok (label text primary key, invitation_id uuid, token text);
grant all on t_tok to public;
-- Two identities share the joiner's email, so they are named here rather than by email. The
-- auth service's unique index users_email_partial_key allows one (non-SSO) identity per exact
-- email, so the second spells it in other case: the same address to accept_invitation, which
-- compares emails case-insensitively.
create temp table t_who (label text primary key, auth_id uuid);
grant all on t_who to public;
insert into t_who values ('joiner', tests.new_auth_user('joiner@example.com')),
                         ('second joiner', tests.new_auth_user('Joiner@Example.com'));  -- same email, another identity
select tests.new_auth_user('late.joiner@example.com'), tests.new_auth_user('revoked.joiner@example.com'),
       tests.new_auth_user('invitee.b@example.com');  -- B's invitee, already a member of A below
select tests.act_as('A', 'administrador');
insert into t_tok select 'join', * from public.create_invitation('joiner@example.com', 'operador');
insert into t_tok select 'late', * from public.create_invitation('late.joiner@example.com', 'operador');
insert into t_tok select 'revoked', * from public.create_invitation('revoked.joiner@example.com', 'operador');
select public.revoke_invitation((select invitation_id from t_tok where label = 'revoked'));

-- create_invitation has no company argument: the caller's company is the only target.
select tests.act_as_superuser();
select is((select array_agg(distinct company_id) from public.user_invitations where id in (select invitation_id from t_tok)),
  array[tests.company_id('A')],
  'create_invitation cannot invite into another company (the invitation always belongs to the caller''s company)');
select tests.act_as('A', 'owner');
select throws_ok($$ insert into public.user_invitations (company_id, email, role, token_hash)
                    values (tests.company_id('B'), 'mole@example.com', 'administrador', sha256('mine'::bytea)) $$,
  '42501', null, 'an owner cannot write an invitation (with a token of their choosing) directly, in any company');
select throws_ok($$ update public.user_invitations set status = 'pending', expires_at = now() + interval '1 year' $$,
  '42501', null, 'an owner cannot revive or extend invitations directly');

-- Accepting ------------------------------------------------------------------------------
select tests.act_as_auth((select auth_id from t_who where label = 'joiner'));
select throws_ok(format('select public.accept_invitation(%L)', md5(random()::text) || md5(random()::text)),
  '22023', 'invitation not found', 'a guessed token is refused');
select throws_ok($$ select public.accept_invitation(encode(sha256(convert_to((select token from t_tok where label = 'join'), 'UTF8')), 'hex')) $$,
  '22023', 'invitation not found', 'the stored hash is not a token: knowing token_hash does not let anyone in');
select throws_ok($$ select public.accept_invitation(upper((select token from t_tok where label = 'join'))) $$,
  '22023', 'invitation not found', 'a token is matched exactly (no case folding that widens the guess space)');
select throws_ok($$ select public.accept_invitation('fixture-token-company-b') $$,
  '42501', 'invitation was issued to another email address', 'another company''s token is refused to anyone but its invitee');
select lives_ok($$ select public.accept_invitation((select token from t_tok where label = 'join')) $$,
  'the invited identity accepts its token once');
select throws_ok($$ select public.accept_invitation((select token from t_tok where label = 'join')) $$,
  '22023', 'invitation has already been used', 'a replayed invitation token is refused');
select tests.act_as_auth((select auth_id from t_who where label = 'second joiner'));
select throws_ok($$ select public.accept_invitation((select token from t_tok where label = 'join')) $$,
  '22023', 'invitation has already been used', 'a replayed invitation token is refused to another identity with the same email');
select tests.act_as('A', 'administrador');
select tests.member_write($$ delete from public.users where auth_user_id = (select auth_id from t_who where label = 'joiner') $$,
                          $$ select public.remove_member((select id from public.users
                                                           where auth_user_id = (select auth_id from t_who where label = 'joiner'))) $$);
select tests.act_as_auth((select auth_id from t_who where label = 'joiner'));
select throws_ok($$ select public.accept_invitation((select token from t_tok where label = 'join')) $$,
  '22023', 'invitation has already been used', 'a removed member cannot rejoin by replaying their used token');
select tests.act_as_email('revoked.joiner@example.com');
select throws_ok($$ select public.accept_invitation((select token from t_tok where label = 'revoked')) $$,
  '22023', 'invitation has been revoked', 'a revoked invitation token is refused');
select tests.act_as_superuser();
update public.user_invitations set created_at = now() - interval '8 days', expires_at = now() - interval '1 day'
 where id = (select invitation_id from t_tok where label = 'late');
select tests.act_as_email('late.joiner@example.com');
select throws_ok($$ select public.accept_invitation((select token from t_tok where label = 'late')) $$,
  '22023', 'invitation has expired', 'an expired invitation token is refused');

-- A member of A who holds B's invitee email cannot join B as well.
select tests.act_as_superuser();
select tests.add_member(tests.company_id('A'), null, tests.auth_id_of('invitee.b@example.com'), 'invitee.b@example.com', 'operador');
select tests.act_as_email('invitee.b@example.com');
select throws_ok($$ select public.accept_invitation('fixture-token-company-b') $$,
  '42501', 'caller already belongs to a company', 'a member of one company cannot use an invitation into another');

-- revoke_invitation with another company's invitation answers as for an unknown id.
select tests.act_as('A', 'owner');
select throws_ok($$ select public.revoke_invitation(tests.invitation_id('B', 'pending')) $$,
  '22023', 'invitation not found', 'revoke_invitation cannot touch (or confirm) another company''s invitation');
select tests.act_as_superuser();
select is((select status::text from public.user_invitations where id = tests.invitation_id('B', 'pending')), 'pending',
  'another company''s invitation stays pending after every attack above');

-- Remove what the attacks above created, so the counts below start from the fixtures.
select tests.act_as_superuser();
select tests.remove_members(array(select id from public.users where company_id = tests.company_id('A') and email = 'invitee.b@example.com'));
delete from public.user_invitations where id in (select invitation_id from t_tok);
delete from auth.users where lower(email) in ('invitee.b@example.com', 'joiner@example.com', 'late.joiner@example.com', 'revoked.joiner@example.com');

-- Invitations of the flow below (who may invite whom: 0205_role_hierarchy.sql) ----
select tests.act_as('A', 'administrador');
insert into t_tokens select 'sup', * from public.create_invitation(' New.Operator@Example.com ', 'supervisor');
select tests.act_as('A', 'owner');
insert into t_tokens select 'adm', * from public.create_invitation('second.admin@example.com', 'administrador');
select throws_ok($$ select * from public.create_invitation('NEW.operator@example.com', 'operador') $$, '23505', null,
    'only one pending invitation per company and email');
select throws_ok($$ select * from public.create_invitation('admin.a@example.com', 'operador') $$, '22023', null,
    'a current member cannot be invited again');
select throws_ok($$ select * from public.create_invitation('not-an-email', 'operador') $$, '22023', null,
    'an invitation needs a valid email');
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.user_invitations), 0, 'a supervisor cannot read invitations');

-- Tokens ------------------------------------------------------------------------------
select tests.act_as_superuser();
select is((select i.token_hash from public.user_invitations i join t_tokens t on t.invitation_id = i.id where t.label = 'sup'),
          (select sha256(convert_to(token, 'UTF8')) from t_tokens where label = 'sup'),
    'tokens are stored only as sha256 hashes');
select ok(not exists (select 1 from public.user_invitations i, t_tokens t where strpos(to_jsonb(i)::text, t.token) > 0),
    'the plaintext token is stored nowhere in user_invitations');
select ok((select bool_and(token ~ '^[0-9a-f]{64}$') from t_tokens),
    'tokens carry 244 random bits (two uuids, 64 hex characters)');
select ok(exists (select 1 from public.audit_logs where table_name = 'user_invitations' and new_data ->> 'token_hash' = '[REDACTED]'),
    'invitation audit rows keep the row but redact the token hash');
select is((select current_pending_invitation_count from public.companies where id = tests.company_id('A')), 3,
    'pending invitations are counted exactly');
select tests.act_as('A', 'owner');
select throws_ok($$ select token_hash from public.user_invitations $$, '42501', null,
    'token hashes are not readable by members');
select is((select count(*)::int from public.user_invitations), 3, 'the owner reads the company''s invitations');

-- Accepting -----------------------------------------------------------------------------
select tests.act_as_no_company();
select throws_ok($$ select public.accept_invitation((select token from t_tokens where label = 'sup')) $$, '42501',
    'invitation was issued to another email address', 'invitation must be accepted by the invited email');
select throws_ok($$ select public.accept_invitation('not-a-real-token') $$, '22023', 'invitation not found',
    'an unknown token is refused');
select tests.act_as_email('New.Operator@Example.com');
select lives_ok($$ select public.accept_invitation((select token from t_tokens where label = 'sup')) $$,
    'the invited email can accept the invitation (case-insensitively)');
select tests.act_as_superuser();
select results_eq(
    $$ select u.role::text, u.email, u.full_name, u.invited_by::text, i.status::text, (i.accepted_by = u.id)
         from public.users u join public.user_invitations i on i.company_id = u.company_id and i.email = u.email
        where u.auth_user_id = tests.auth_id_of('New.Operator@Example.com') $$,
    $$ values ('supervisor', 'new.operator@example.com', 'Nora New', tests.user_id('A', 'administrador')::text, 'accepted', true) $$,
    'accepting creates the member with the invited role and marks the invitation accepted, atomically');
select results_eq(
    $$ select current_user_count, current_pending_invitation_count from public.companies where id = tests.company_id('A') $$,
    $$ values (5, 2) $$,
    'accepting moves a seat from pending invitations to members');
select tests.act_as_email('New.Operator@Example.com');
select throws_ok($$ select public.accept_invitation((select token from t_tokens where label = 'sup')) $$, '22023',
    'invitation has already been used', 'an accepted invitation cannot be used twice');
select tests.act_as_service();
select throws_ok($$ update public.user_invitations set status = 'pending', accepted_at = null where email = 'new.operator@example.com' $$,
    '22023', null, 'an accepted invitation is final');

-- Expiry and revocation -------------------------------------------------------------------
select tests.act_as_superuser();
update public.user_invitations set created_at = now() - interval '10 days', expires_at = now() - interval '3 days'
 where id = tests.invitation_id('B', 'pending');
update auth.users set email = 'invitee.b@example.com' where id = tests.auth_id_of('expired.invitee@example.com');
select tests.act_as_email('invitee.b@example.com');
select throws_ok($$ select public.accept_invitation('fixture-token-company-b') $$, '22023', 'invitation has expired',
    'an expired invitation is refused');
select tests.act_as('B', 'administrador');
select lives_ok($$ select * from public.create_invitation('invitee.b@example.com', 'operador') $$,
    'an expired pending invitation stops blocking a new invitation for the same email');
select tests.act_as_superuser();
select is((select status::text from public.user_invitations where id = tests.invitation_id('B', 'pending')), 'expired',
    'creating an invitation marks the company''s stale pending invitations expired');
select tests.act_as('A', 'administrador');
select throws_ok($$ select public.revoke_invitation(tests.invitation_id('B', 'pending')) $$, '22023', 'invitation not found',
    'invitations of another company cannot be revoked');
select lives_ok($$ select public.revoke_invitation(tests.invitation_id('A', 'pending')) $$,
    'an administrador revokes a pending invitation for a lower role');
select tests.act_as_superuser();
update auth.users set email = 'invitee.a@example.com' where id = tests.auth_id_of('invitee.b@example.com');
select tests.act_as_email('invitee.a@example.com');
select throws_ok($$ select public.accept_invitation('fixture-token-company-a') $$, '22023', 'invitation has been revoked',
    'a revoked invitation is refused');

-- rule: member-limits (docs/rules.md)
-- Plan limits ---------------------------------------------------------------------------
select tests.act_as_email('free.owner@example.com');
select isnt(public.create_company_with_owner('Free Co'), null, 'a company on the free plan (2 users) can be created');
select lives_ok($$ insert into t_tokens select 'free1', * from public.create_invitation('free.member@example.com', 'operador') $$,
    'a free company can invite while members + pending invitations fit max_users');
select throws_ok($$ select * from public.create_invitation('third@example.com', 'operador') $$, 'NA001',
    'user limit reached for plan free: 2 of 2 (1 members + 1 pending invitations)',
    'pending invitations hold a seat: members + pending cannot exceed the plan''s users');
select tests.act_as_email('free.member@example.com');
select lives_ok($$ select public.accept_invitation((select token from t_tokens where label = 'free1')) $$,
    'the invitee fills the last seat');
select tests.act_as_service();
select throws_ok($$ select tests.add_member((select company_id from public.users where auth_user_id = tests.auth_id_of('free.owner@example.com')),
                                            null, tests.no_company_auth_id(), 'nocompany@example.com', 'operador') $$,
    'NA001', 'user limit reached for plan free: 2 of 2', 'the user limit of the plan cannot be exceeded');

select tests.act_as_superuser();
insert into public.subscription_plans (code, name, monthly_price_cents, max_users, max_pending_invitations, is_public)
values ('tiny_test', 'Tiny (test)', 0, 10, 1, true);
select tests.act_as_email('tiny.owner@example.com');
select isnt(public.create_company_with_owner('Tiny Co', null, 'tiny_test'), null, 'a company on a plan with 1 pending invitation can be created');
select lives_ok($$ select * from public.create_invitation('one@example.com', 'operador') $$, 'the first pending invitation fits the plan');
select throws_ok($$ select * from public.create_invitation('two@example.com', 'operador') $$, 'NA001',
    'pending invitation limit reached for plan tiny_test: 1 of 1', 'the pending-invitation limit of the plan cannot be exceeded');

-- rule: identity-email (docs/rules.md)
-- Bound to the identity's confirmed auth.users email, never to the JWT's email claim ------
select tests.new_auth_user('claimed.invitee@example.com'), tests.new_auth_user('mallory@example.com'),
       tests.new_auth_user('unconfirmed.invitee@example.com', '{}', false), tests.new_auth_user('confirmed.invitee@example.com');
select tests.act_as('A', 'administrador');
insert into t_tokens select 'claimed', * from public.create_invitation('claimed.invitee@example.com', 'operador');
insert into t_tokens select 'unconfirmed', * from public.create_invitation('unconfirmed.invitee@example.com', 'operador');
insert into t_tokens select 'confirmed', * from public.create_invitation('confirmed.invitee@example.com', 'operador');
select tests.act_as_email('mallory@example.com');
select set_config('request.jwt.claims', jsonb_set(current_setting('request.jwt.claims')::jsonb, '{email}',
                  '"claimed.invitee@example.com"')::text, true);
select throws_ok($$ select public.accept_invitation((select token from t_tokens where label = 'claimed')) $$, '42501',
    'invitation was issued to another email address',
    'a JWT whose email claim names the invitee cannot accept the invitation when the identity''s auth.users email differs');
select tests.act_as_email('unconfirmed.invitee@example.com');
select throws_ok($$ select public.accept_invitation((select token from t_tokens where label = 'unconfirmed')) $$, '42501',
    'the invited email address is not confirmed',
    'an identity whose email is not confirmed (auth.users.email_confirmed_at null) cannot accept an invitation to it');
select tests.act_as_email('confirmed.invitee@example.com');
select lives_ok($$ select public.accept_invitation((select token from t_tokens where label = 'confirmed')) $$,
    'an identity whose auth.users email is the invited one and confirmed accepts the invitation');

select * from finish();
rollback;
