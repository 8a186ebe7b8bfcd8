-- Business rules of companies and members: atomic company creation, exactly one
-- owner, isolation of companies (including probing and planner statistics), own
-- profile only, members never change company, company profile vs plan/billing.
-- Who may grant which role is 0205_role_hierarchy.sql.
begin;
select plan(35);

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
select throws_ok($$ update public.users set is_active = false where id = tests.user_id('A', 'operador') $$,
    '42501', null, 'a member cannot change their own active state');
select throws_ok($$ update public.users set email = 'other@example.com' where id = tests.user_id('A', 'operador') $$,
    '42501', null, 'a member cannot change their own email');
select is(tests.affected_rows($$ update public.users set full_name = 'x' where id = tests.user_id('A', 'supervisor') $$), 0::bigint,
    'an operador can only update their own full_name (not other members)');
select is(tests.affected_rows($$ delete from public.users where id = tests.user_id('A', 'operador') $$), 0::bigint,
    'an operador cannot remove members, not even themselves');

-- Own company_id -----------------------------------------------------------------
select tests.act_as('A', 'administrador');
select throws_ok($$ update public.users set company_id = tests.company_id('B')
                     where id = tests.user_id('A', 'administrador') $$,
  '42501', null, 'an administrador cannot change their own company_id');
select tests.act_as('A', 'owner');
select throws_ok($$ update public.users set company_id = tests.company_id('B')
                     where id = tests.user_id('A', 'operador') $$,
  '42501', null, 'an owner cannot move a member into another company');
select tests.act_as_service();
select throws_ok($$ update public.users set company_id = tests.company_id('B')
                     where company_id = tests.company_id('A') and id = tests.user_id('A', 'operador') $$,
  '42501', 'the tenant key of users cannot change',
  'a member cannot be moved to another company, even by service_role');

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

-- Company plan, billing and usage counters -------------------------------------------
select tests.act_as('A', 'owner');
select throws_ok($$ update public.companies set id = tests.company_id('B') where id = tests.company_id('A') $$,
  '42501', null, 'the owner cannot re-key the company');

-- Cross-company references and probing --------------------------------------------------
select is(tests.attempt_as('service_role', $$ insert into public.users (company_id, auth_user_id, email, role, invited_by)
  values (tests.company_id('A'), tests.no_company_auth_id(), 'nocompany@example.com', 'operador', tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "users" violates foreign key constraint "users_invited_by_fkey"',
  'a member cannot be recorded as invited by another company''s member, even for service_role');
select is(tests.attempt_as('no_company', $$ insert into public.message_reactions (company_id, message_id, reaction)
  values (tests.company_id('B'), tests.message_id('B', 'assigned-human/bot'), 'thumbs_up') $$),
  '42501: new row violates row-level security policy for table "message_reactions"',
  'an identity without a company cannot write a row into any company');

-- Unique keys ------------------------------------------------------------------------
select is(tests.outcome_as('administrador', $$ insert into public.chatbots (company_id, name, system_prompt)
    values (tests.company_id('A'), 'Sales bot 2', 'p'), (tests.company_id('A'), 'Support bot B', 'p')
    returning 1 $$) || ' / ' ||
  tests.outcome_as('administrador', $$ insert into public.integrations (company_id, id, type, name)
    values (tests.company_id('A'), tests.integration_id('B', 'with credentials'), 'telegram', 'Telegram bot') returning 1 $$),
  'ok: 1 / ok: 1',
  'a unique-key error does not reveal that another company''s row exists (names and ids are unique per company only)');
select is(
  tests.outcome_as('administrador', $$ insert into public.chatbots (company_id, name, system_prompt)
    values (tests.company_id('B'), 'Support bot', 'p') on conflict do nothing returning 1 $$) || ' / ' ||
  tests.outcome_as('administrador', $$ insert into public.chatbots (company_id, name, system_prompt)
    values (tests.company_id('B'), 'No such bot anywhere', 'p') on conflict do nothing returning 1 $$),
  '42501: new row violates row-level security policy for table "chatbots" / 42501: new row violates row-level security policy for table "chatbots"',
  'ON CONFLICT cannot be used to test another company''s unique keys');
select is(
  tests.outcome_as('administrador', $$ insert into public.documents (company_id, title, mime_type, storage_path)
    values (tests.company_id('B'), 't', 'application/pdf', 'docs/account-fees.pdf') $$) || ' / ' ||
  tests.outcome_as('administrador', $$ insert into public.documents (company_id, title, mime_type, storage_path)
    values (tests.company_id('B'), 't', 'application/pdf', 'docs/nothing-here.pdf') $$),
  '42501: new row violates row-level security policy for table "documents" / 42501: new row violates row-level security policy for table "documents"',
  'inserting into another company fails identically whether or not the unique key exists there');

-- Planner statistics ---------------------------------------------------------------------
analyze public.chatbots, public.users, public.messages, public.documents, public.user_invitations, private.integration_credentials;
select tests.act_as('A', 'owner');
select is((select count(*)::int from pg_stats where schemaname in ('public', 'private')), 0,
  'planner statistics (pg_stats) show members no values of row-secured tables');
select tests.act_as_superuser();

-- Internal helpers are not callable by clients -------------------------------------
select tests.act_as('A', 'owner');

-- Internal helpers are not callable by clients -------------------------------------
select throws_ok($$ select private.consume_quota(tests.company_id('A'), 'current_user_count', -100) $$,
    '42501', null, 'clients cannot call private.consume_quota');
select tests.act_as_superuser();
select throws_ok($$ select private.consume_quota(tests.company_id('A'), 'max_users', 1) $$,
    '22023', null, 'consume_quota accepts only the known counters');

select * from finish();
rollback;
