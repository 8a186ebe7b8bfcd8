-- An invitation grants a role on behalf of the member who sent it; that member must
-- still be able to grant it when the invitation is accepted.
begin;
select plan(3);

select tests.new_auth_user('grantor.kept@example.com'), tests.new_auth_user('grantor.demoted@example.com');

select tests.act_as('A', 'administrador');  -- administrador of A
create temp table tokens as
  select 'kept' as k, token from public.create_invitation('grantor.kept@example.com', 'supervisor')
  union all
  select 'demoted', token from public.create_invitation('grantor.demoted@example.com', 'supervisor');
select tests.act_as_superuser();
grant select on tokens to authenticated;

select tests.act_as_email('grantor.kept@example.com');
select lives_ok($$ select public.accept_invitation((select token from tokens where k = 'kept')) $$,
  'an invitation is accepted while its sender may still grant the role');

select tests.act_as('A', 'owner');  -- owner demotes the administrador
update public.users set role = 'supervisor' where id = tests.user_id('A', 'administrador');
select is((select role::text from public.users where id = tests.user_id('A', 'administrador')), 'supervisor',
  'the owner demoted the administrador who sent the invitation');

select tests.act_as_email('grantor.demoted@example.com');
select throws_ok($$ select public.accept_invitation((select token from tokens where k = 'demoted')) $$,
  '42501', 'the member who sent this invitation can no longer grant this role',
  'an invitation from a member since demoted to the invited rank no longer grants that role');

select * from finish();
rollback;
