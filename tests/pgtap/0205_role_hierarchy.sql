-- Nobody grants a role at or above their own: not to themselves, not to a peer,
-- not through an invitation (and an invitation stops granting when its sender is
-- demoted), not with a forged JWT claim; ownership moves only by transfer_ownership.
-- Also who may change, deactivate or remove whom (only lower ranks).
begin;
select plan(44);

create temp table t_tokens (label text primary key, invitation_id uuid, token text);
grant all on t_tokens to public;

-- A second administrador and a second operador in company A (peers).
select tests.add_member(tests.company_id('A'), tests.new_id('user', 'A', 'second administrador'),
                        tests.new_auth_user('admin2.a@example.com'), 'admin2.a@example.com', 'administrador'),
       tests.add_member(tests.company_id('A'), tests.new_id('user', 'A', 'second operador'),
                        tests.new_auth_user('operador2.a@example.com'), 'operador2.a@example.com', 'operador');

-- rule: role-hierarchy (docs/rules.md)
-- Own role -----------------------------------------------------------------------
select tests.act_as('A', 'operador');
select throws_ok($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$,
  '42501', 'you cannot change your own role, company or active state',
  'an operador cannot promote themselves to supervisor');
select throws_ok($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$,
    '42501', null, 'an operador cannot change their own role');
select tests.act_as('A', 'supervisor');
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'supervisor') $$,
  '42501', 'you cannot change your own role, company or active state',
  'a supervisor cannot promote themselves to administrador');
select tests.act_as('A', 'administrador');
select throws_ok($$ update public.users set role = 'owner' where id = tests.user_id('A', 'administrador') $$,
  '42501', 'you cannot change your own role, company or active state',
  'an administrador cannot promote themselves to owner');
select throws_ok($$ update public.users set is_active = false where id = tests.user_id('A', 'administrador') $$,
  '42501', 'you cannot change your own role, company or active state',
  'an administrador cannot change their own active state');

-- A forged role claim in the JWT changes nothing: the database role and the
-- membership decide, not the token's "role" claim.
select tests.act_as('A', 'operador');
select set_config('request.jwt.claims',
  jsonb_build_object('sub', tests.auth_id('A', 'operador'), 'role', 'service_role', 'app_metadata', '{"role": "owner"}'::jsonb)::text, true);
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'operador') $$,
  '42501', null, 'a service_role or owner claim in the JWT grants an authenticated session nothing');

-- Promoting a peer or a higher rank ---------------------------------------------------
select tests.act_as('A', 'operador');
select is(tests.affected_rows($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'second operador') $$),
  0::bigint, 'an operador cannot promote a peer operador');
select tests.act_as('A', 'supervisor');
select is(tests.affected_rows($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$),
  0::bigint, 'a supervisor cannot promote an operador');
select tests.act_as('A', 'administrador');
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'operador') $$,
  '42501', null, 'an administrador cannot promote a member to their own rank');
select throws_ok($$ update public.users set role = 'owner' where id = tests.user_id('A', 'supervisor') $$,
  '42501', null, 'an administrador cannot promote a member to owner');
select is(tests.affected_rows($$ update public.users set role = 'operador' where id = tests.user_id('A', 'second administrador') $$),
  0::bigint, 'an administrador cannot demote a peer administrador');
select is(tests.affected_rows($$ update public.users set is_active = false where id = tests.user_id('A', 'owner') $$),
  0::bigint, 'an administrador cannot deactivate the owner');
select is(tests.member_delete('public.users', $$ id in (tests.user_id('A', 'owner'), tests.user_id('A', 'second administrador')) $$),
  0::bigint, 'an administrador cannot remove the owner or a peer administrador');
select throws_ok($$ select public.transfer_ownership(tests.user_id('A', 'administrador')) $$,
  '42501', 'only the owner can transfer ownership', 'an administrador cannot transfer ownership to themselves');
select tests.act_as('A', 'owner');
select throws_ok($$ update public.users set role = 'owner' where id = tests.user_id('A', 'administrador') $$,
  '42501', null, 'even the owner cannot create a second owner by update (ownership moves only via transfer_ownership)');

-- A deactivated member keeps no rights ---------------------------------------------------
select tests.act_as('A', 'owner');
select tests.member_write($$ update public.users set is_active = false where id = tests.user_id('A', 'second administrador') $$,
                          $$ select public.set_member_active(tests.user_id('A', 'second administrador'), false) $$);
select tests.act_as('A', 'second administrador');
select is(
  array[(select count(*) from public.users)::text, (select count(*) from public.chatbots)::text,
        tests.attempt($$ select * from public.create_invitation('late@example.com', 'operador') $$),
        tests.affected_rows($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$)::text],
  array['0', '0', '42501: only an owner or administrador can invite members', '0'],
  'a deactivated administrador reads nothing and can invite or change no one (its token is still valid)');

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
select tests.act_as('A', 'supervisor');
select throws_ok($$ select * from public.create_invitation('x@example.com', 'operador') $$, '42501', null,
    'a supervisor cannot invite');
select tests.act_as('A', 'operador');
select throws_ok($$ select * from public.create_invitation('x@example.com', 'operador') $$, '42501', null,
    'an operador cannot invite');
select tests.act_as_service();
select throws_ok($$ insert into public.user_invitations (company_id, email, role, token_hash)
                    values (tests.company_id('A'), 'x@example.com', 'owner', sha256('x'::bytea)) $$,
    '23514', null, 'an invitation can never grant the owner role');

-- Revoking follows the same ranks -----------------------------------------------------
select tests.act_as('A', 'supervisor');
select throws_ok($$ select public.revoke_invitation(tests.invitation_id('A', 'pending')) $$, '42501', null,
    'a supervisor cannot revoke invitations');
select tests.act_as('A', 'administrador');
select throws_ok($$ select public.revoke_invitation((select invitation_id from t_tokens where label = 'adm')) $$, '42501', null,
    'an administrador cannot revoke an invitation for an administrador');

-- An invitation grants a role on behalf of the member who sent it; that member must
-- still be able to grant it when the invitation is accepted (a dedicated sender, so
-- the administrador of A keeps their rank for the rank rules below).
select tests.act_as_superuser();
select tests.add_member(tests.company_id('A'), tests.new_id('user', 'A', 'inviting administrador'),
                        tests.new_auth_user('inviting.admin.a@example.com'), 'inviting.admin.a@example.com', 'administrador');

select tests.new_auth_user('grantor.kept@example.com'), tests.new_auth_user('grantor.demoted@example.com');

create temp table tokens (k text, token text);  -- as superuser: client roles may not create temp tables (0590)
grant insert on tokens to authenticated;
select tests.act_as('A', 'inviting administrador');
insert into tokens
  select 'kept' as k, token from public.create_invitation('grantor.kept@example.com', 'supervisor')
  union all
  select 'demoted', token from public.create_invitation('grantor.demoted@example.com', 'supervisor');
select tests.act_as_superuser();
grant select on tokens to authenticated;

select tests.act_as_email('grantor.kept@example.com');
select lives_ok($$ select public.accept_invitation((select token from tokens where k = 'kept')) $$,
  'an invitation is accepted while its sender may still grant the role');

select tests.act_as('A', 'owner');
-- the owner demotes the administrador who sent the invitation
select tests.member_write($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'inviting administrador') $$,
                          $$ select public.set_member_role(tests.user_id('A', 'inviting administrador'), 'supervisor') $$);
select is((select role::text from public.users where id = tests.user_id('A', 'inviting administrador')), 'supervisor',
  'the owner demoted the administrador who sent the invitation');

select tests.act_as_email('grantor.demoted@example.com');
select throws_ok($$ select public.accept_invitation((select token from tokens where k = 'demoted')) $$,
  '42501', 'the member who sent this invitation can no longer grant this role',
  'an invitation from a member since demoted to the invited rank no longer grants that role');

-- The rank rules below count seats: remove the members this file added.
select tests.act_as_superuser();
select tests.remove_members(array(select id from public.users where company_id = tests.company_id('A')
   and email in ('admin2.a@example.com', 'operador2.a@example.com', 'inviting.admin.a@example.com', 'grantor.kept@example.com')));

-- Rank rules ------------------------------------------------------------------------
select tests.act_as('A', 'owner');
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'owner') $$,
    '42501', null, 'the owner cannot change their own role (use transfer_ownership)');

select tests.act_as('A', 'administrador');
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'supervisor') $$,
    '42501', null, 'an administrador cannot grant a role at or above their own');
select is(tests.member_write($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$,
                             $$ select public.set_member_role(tests.user_id('A', 'operador'), 'supervisor') $$), 1::bigint,
    'an administrador can change the role of a lower-ranked member');
select is(tests.affected_rows($$ update public.users set full_name = 'x' where id = tests.user_id('A', 'owner') $$), 0::bigint,
    'an administrador cannot update the owner');
select is(tests.member_delete('public.users', $$ id = tests.user_id('A', 'owner') $$), 0::bigint,
    'an administrador cannot remove the owner');

select tests.act_as('A', 'supervisor');
select is(tests.member_delete('public.users', $$ id = tests.user_id('A', 'operador') $$), 0::bigint,
    'a supervisor cannot remove members');

select tests.act_as('A', 'administrador');
select is(tests.member_write($$ update public.users set is_active = false where id = tests.user_id('A', 'operador') $$,
                             $$ select public.set_member_active(tests.user_id('A', 'operador'), false) $$), 1::bigint,
    'an administrador can deactivate a lower-ranked member');
select tests.act_as_auth(tests.auth_id('A', 'operador'));
select ok((select private.get_user_company_id()) is null and (select count(*) from public.users) = 0,
    'a deactivated member loses all access at once');

select tests.act_as('A', 'administrador');
select is(tests.member_write($$ select tests.member_delete('public.users', $d$ id = tests.user_id('A', 'operador') $d$) $$,
                             $$ select public.remove_member(tests.user_id('A', 'operador')) $$), 1::bigint,
    'an administrador can remove a lower-ranked member');
select tests.act_as_superuser();
select is((select current_user_count from public.companies where id = tests.company_id('A')), 3,
    'removing a member frees its seat (current_user_count stays exact)');

-- rule: ownership-transfer (docs/rules.md)
-- Ownership transfer --------------------------------------------------------------------
select tests.act_as('A', 'administrador');
select throws_ok($$ select public.transfer_ownership(tests.user_id('A', 'administrador')) $$, '42501', null,
    'only the owner can transfer ownership');
select tests.act_as('A', 'owner');
select throws_ok($$ select public.transfer_ownership(tests.user_id('B', 'administrador')) $$, '22023', null,
    'ownership cannot be transferred to a member of another company');
select lives_ok($$ select public.transfer_ownership(tests.user_id('A', 'supervisor')) $$,
    'the owner can transfer ownership to another member');
select tests.act_as_superuser();
select results_eq(
    $$ select id::text, role::text from public.users where company_id = tests.company_id('A')
        and role in ('owner', 'administrador') order by id $$,
    $$ values (tests.user_id('A', 'owner')::text, 'administrador'),
              (tests.user_id('A', 'administrador')::text, 'administrador'),
              (tests.user_id('A', 'supervisor')::text, 'owner') $$,
    'transfer_ownership makes the new member owner and the old owner administrador, atomically');
select tests.act_as('A', 'owner');
select throws_ok($$ select public.transfer_ownership(tests.user_id('A', 'administrador')) $$, '42501', null,
    'a former owner can no longer transfer ownership');

select * from finish();
rollback;
