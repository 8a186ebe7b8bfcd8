-- Business rules of invitations and plan limits: only lower ranks, hashed
-- single-use expiring tokens bound to an email, exact counters, NA001 limits.
begin;
select plan(41);

create temp table t_tokens (label text primary key, invitation_id uuid, token text);
grant all on t_tokens to public;
select tests.new_auth_user('New.Operator@Example.com', '{"full_name": "Nora New"}'), tests.new_auth_user('expired.invitee@example.com'),
       tests.new_auth_user('free.owner@example.com'), tests.new_auth_user('free.member@example.com'),
       tests.new_auth_user('tiny.owner@example.com');

-- Who may invite whom ----------------------------------------------------------
select tests.act_as('A', 'administrador');
select throws_ok($$ select * from public.create_invitation('peer@example.com', 'administrador') $$, '42501', null,
    'an administrador cannot invite an administrador');
select throws_ok($$ select * from public.create_invitation('boss@example.com', 'owner') $$, '42501', null,
    'an administrador cannot invite an owner');
select lives_ok($$ insert into t_tokens select 'sup', * from public.create_invitation(' New.Operator@Example.com ', 'supervisor') $$,
    'an administrador can invite a supervisor');
select tests.act_as('A', 'owner');
select throws_ok($$ select * from public.create_invitation('boss@example.com', 'owner') $$, '42501', null,
    'nobody can invite an owner, not even the owner');
select lives_ok($$ insert into t_tokens select 'adm', * from public.create_invitation('second.admin@example.com', 'administrador') $$,
    'the owner can invite an administrador');
select throws_ok($$ select * from public.create_invitation('NEW.operator@example.com', 'operador') $$, '23505', null,
    'only one pending invitation per company and email');
select throws_ok($$ select * from public.create_invitation('admin.a@example.com', 'operador') $$, '22023', null,
    'a current member cannot be invited again');
select throws_ok($$ select * from public.create_invitation('not-an-email', 'operador') $$, '22023', null,
    'an invitation needs a valid email');
select tests.act_as('A', 'supervisor');
select throws_ok($$ select * from public.create_invitation('x@example.com', 'operador') $$, '42501', null,
    'a supervisor cannot invite');
select is((select count(*)::int from public.user_invitations), 0, 'a supervisor cannot read invitations');
select tests.act_as('A', 'operador');
select throws_ok($$ select * from public.create_invitation('x@example.com', 'operador') $$, '42501', null,
    'an operador cannot invite');
select tests.act_as_service();
select throws_ok($$ insert into public.user_invitations (company_id, email, role, token_hash)
                    values (tests.company_id('A'), 'x@example.com', 'owner', sha256('x'::bytea)) $$,
    '23514', null, 'an invitation can never grant the owner role');

-- Tokens ------------------------------------------------------------------------------
select tests.act_as_superuser();
select is((select i.token_hash from public.user_invitations i join t_tokens t on t.invitation_id = i.id where t.label = 'sup'),
          (select sha256(convert_to(token, 'UTF8')) from t_tokens where label = 'sup'),
    'tokens are stored only as sha256 hashes');
select ok(not exists (select 1 from public.user_invitations i, t_tokens t where strpos(to_jsonb(i)::text, t.token) > 0),
    'the plaintext token is stored nowhere in user_invitations');
select ok((select bool_and(token ~ '^[0-9a-f]{64}$') from t_tokens),
    'tokens carry 244 random bits (two uuids, 64 hex characters)');
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

select tests.act_as('A', 'supervisor');
select throws_ok($$ select public.revoke_invitation(tests.invitation_id('A', 'pending')) $$, '42501', null,
    'a supervisor cannot revoke invitations');
select tests.act_as('A', 'administrador');
select throws_ok($$ select public.revoke_invitation((select invitation_id from t_tokens where label = 'adm')) $$, '42501', null,
    'an administrador cannot revoke an invitation for an administrador');
select throws_ok($$ select public.revoke_invitation(tests.invitation_id('B', 'pending')) $$, '22023', 'invitation not found',
    'invitations of another company cannot be revoked');
select lives_ok($$ select public.revoke_invitation(tests.invitation_id('A', 'pending')) $$,
    'an administrador revokes a pending invitation for a lower role');
select tests.act_as_superuser();
update auth.users set email = 'invitee.a@example.com' where id = tests.auth_id_of('invitee.b@example.com');
select tests.act_as_email('invitee.a@example.com');
select throws_ok($$ select public.accept_invitation('fixture-token-company-a') $$, '22023', 'invitation has been revoked',
    'a revoked invitation is refused');

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
select throws_ok($$ insert into public.users (company_id, auth_user_id, email, role)
                    select company_id, tests.no_company_auth_id(), 'nocompany@example.com', 'operador'
                      from public.users where auth_user_id = tests.auth_id_of('free.owner@example.com') $$,
    'NA001', 'user limit reached for plan free: 2 of 2', 'the user limit of the plan cannot be exceeded');

select tests.act_as_superuser();
insert into public.subscription_plans (code, name, max_users, max_pending_invitations, is_public)
values ('tiny_test', 'Tiny (test)', 10, 1, true);
select tests.act_as_email('tiny.owner@example.com');
select isnt(public.create_company_with_owner('Tiny Co', null, 'tiny_test'), null, 'a company on a plan with 1 pending invitation can be created');
select lives_ok($$ select * from public.create_invitation('one@example.com', 'operador') $$, 'the first pending invitation fits the plan');
select throws_ok($$ select * from public.create_invitation('two@example.com', 'operador') $$, 'NA001',
    'pending invitation limit reached for plan tiny_test: 1 of 1', 'the pending-invitation limit of the plan cannot be exceeded');

select * from finish();
rollback;
