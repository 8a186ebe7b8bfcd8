-- Hardening (invitation tokens): reuse, replay, guess, cross-company use,
-- revoked/expired tokens, and inviting into or reading another company.
begin;
select plan(16);

create temp table t_tok (label text primary key, invitation_id uuid, token text);
grant all on t_tok to public;
-- Two identities share the joiner's email, so they are named here rather than by email.
create temp table t_who (label text primary key, auth_id uuid);
grant all on t_who to public;
insert into t_who values ('joiner', tests.new_auth_user('joiner@example.com')),
                         ('second joiner', tests.new_auth_user('joiner@example.com'));  -- same email, another identity
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
delete from public.users where auth_user_id = (select auth_id from t_who where label = 'joiner');
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
insert into public.users (company_id, auth_user_id, email, role)
values (tests.company_id('A'), tests.auth_id_of('invitee.b@example.com'), 'invitee.b@example.com', 'operador');
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

select * from finish();
rollback;
