-- Business rules of companies and members: one owner, role hierarchy,
-- atomic company creation, ownership transfer, profile vs plan columns.
begin;
select plan(41);

-- Company creation ---------------------------------------------------------
select tests.act_as_anon();
select throws_ok($$ select public.create_company_with_owner('Anon Co') $$, '42501', null,
    'anon cannot create a company');

select tests.act_as('A', 'owner');
select throws_ok($$ select public.create_company_with_owner('Second Co') $$, '42501', 'caller already belongs to a company',
    'create_company_with_owner refuses a caller that already has a company');

select tests.act_as_no_company();
select throws_ok($$ select public.create_company_with_owner('Bad Plan Co', null, 'no_such_plan') $$, '22023', null,
    'create_company_with_owner refuses an unknown plan');
select lives_ok($$ select public.create_company_with_owner('C Company', 'tourism') $$,
    'an authenticated user without a company can create one');
select results_eq(
    $$ select u.role::text, u.email, c.name, c.subscription_plan, c.current_user_count
         from public.users u join public.companies c on c.id = u.company_id
        where u.auth_user_id = tests.no_company_auth_id() $$,
    $$ values ('owner', 'nocompany@example.com', 'C Company', 'free', 1) $$,
    'create_company_with_owner makes the caller the owner of a new free company, atomically, with an exact member counter');

-- Exactly one owner ------------------------------------------------------------
select tests.act_as_superuser();
select tests.new_auth_user('second.owner@example.com');
select throws_ok($$ insert into public.users (company_id, auth_user_id, email, role)
                    values (tests.company_id('A'), tests.auth_id_of('second.owner@example.com'), 'second.owner@example.com', 'owner') $$,
    '23505', null, 'a company can never have two owners');
select throws_ok($$ delete from public.users where auth_user_id = tests.no_company_auth_id() $$,
    '42501', 'company ' || (select id from public.companies where name = 'C Company') || ' would be left without an owner',
    'owner cannot be deleted while the company exists');
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'owner') $$,
    '42501', null, 'a company never ends a statement without an owner');

select tests.act_as_service();
select lives_ok($$ delete from public.companies where name = 'C Company' $$,
    'deleting a company removes its owner and members with it');
select is((select count(*)::int from public.users where auth_user_id = tests.no_company_auth_id()), 0,
    'members of a deleted company are gone');

-- Isolation smoke (the full matrix is the isolation suite) ---------------------
select tests.act_as('A', 'operador');
select is((select count(*)::int from public.companies), 1, 'a member sees only their own company');
select is((select count(*)::int from public.users where company_id <> tests.company_id('A')), 0,
    'a member never sees members of another company');

-- Own profile only -----------------------------------------------------------------
select is(tests.affected_rows($$ update public.users set full_name = 'Oscar O.' where id = tests.user_id('A', 'operador') $$), 1::bigint,
    'an operador can update their own full_name');
select throws_ok($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$,
    '42501', null, 'an operador cannot change their own role');
select throws_ok($$ update public.users set is_active = false where id = tests.user_id('A', 'operador') $$,
    '42501', null, 'a member cannot change their own active state');
select throws_ok($$ update public.users set email = 'other@example.com' where id = tests.user_id('A', 'operador') $$,
    '42501', null, 'a member cannot change their own email');
select is(tests.affected_rows($$ update public.users set full_name = 'x' where id = tests.user_id('A', 'supervisor') $$), 0::bigint,
    'an operador can only update their own full_name (not other members)');
select is(tests.affected_rows($$ delete from public.users where id = tests.user_id('A', 'operador') $$), 0::bigint,
    'an operador cannot remove members, not even themselves');

-- Rank rules ------------------------------------------------------------------------
select tests.act_as('A', 'owner');
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'owner') $$,
    '42501', null, 'the owner cannot change their own role (use transfer_ownership)');

select tests.act_as('A', 'administrador');
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'supervisor') $$,
    '42501', null, 'an administrador cannot grant a role at or above their own');
select is(tests.affected_rows($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$), 1::bigint,
    'an administrador can change the role of a lower-ranked member');
select is(tests.affected_rows($$ update public.users set full_name = 'x' where id = tests.user_id('A', 'owner') $$), 0::bigint,
    'an administrador cannot update the owner');
select is(tests.affected_rows($$ delete from public.users where id = tests.user_id('A', 'owner') $$), 0::bigint,
    'an administrador cannot remove the owner');

select tests.act_as('A', 'supervisor');
select is(tests.affected_rows($$ delete from public.users where id = tests.user_id('A', 'operador') $$), 0::bigint,
    'a supervisor cannot remove members');

select tests.act_as('A', 'administrador');
select is(tests.affected_rows($$ update public.users set is_active = false where id = tests.user_id('A', 'operador') $$), 1::bigint,
    'an administrador can deactivate a lower-ranked member');
select tests.act_as_auth(tests.auth_id('A', 'operador'));
select ok((select public.get_user_company_id()) is null and (select count(*) from public.users) = 0,
    'a deactivated member loses all access at once');

select tests.act_as('A', 'administrador');
select is(tests.affected_rows($$ delete from public.users where id = tests.user_id('A', 'operador') $$), 1::bigint,
    'an administrador can remove a lower-ranked member');
select tests.act_as_superuser();
select is((select current_user_count from public.companies where id = tests.company_id('A')), 3,
    'removing a member frees its seat (current_user_count stays exact)');

select tests.act_as_service();
select throws_ok($$ update public.users set company_id = tests.company_id('B') where id = tests.user_id('A', 'supervisor') $$,
    '42501', null, 'a member can never be moved to another company');

-- Company profile vs plan/billing --------------------------------------------------
select tests.act_as('A', 'owner');
select is(tests.affected_rows($$ update public.companies set name = 'Company A Renamed', industry = 'ecommerce' $$), 1::bigint,
    'the owner can update the company profile');
select throws_ok($$ update public.companies set subscription_plan = 'free' $$, '42501', null,
    'the owner cannot change the plan (only service_role)');
select throws_ok($$ update public.companies set current_user_count = 0 $$, '42501', null,
    'members cannot touch the usage counters');
select tests.act_as('A', 'supervisor');
select is(tests.affected_rows($$ update public.companies set name = 'Hacked' $$), 0::bigint,
    'a supervisor cannot update the company profile');
select tests.act_as_service();
select is(tests.affected_rows($$ update public.companies set subscription_plan = 'professional', subscription_status = 'past_due' where id = tests.company_id('A') $$), 1::bigint,
    'service_role changes plan and billing');

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

-- Internal helpers are not callable by clients -------------------------------------
select throws_ok($$ select private.consume_quota(tests.company_id('A'), 'current_user_count', -100) $$,
    '42501', null, 'clients cannot call private.consume_quota');
select tests.act_as_superuser();
select throws_ok($$ select private.consume_quota(tests.company_id('A'), 'max_users', 1) $$,
    '22023', null, 'consume_quota accepts only the known counters');

select * from finish();
rollback;
