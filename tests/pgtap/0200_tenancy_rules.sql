-- Business rules of companies and members: atomic company creation, exactly one
-- owner, isolation of companies (including probing and planner statistics), own
-- profile only, members never change company, company profile vs plan/billing.
-- Who may grant which role is 0205_role_hierarchy.sql.
begin;
select plan(48);

-- rule: company-with-owner (docs/rules.md)
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
select is(tests.attempt($$ select public.create_company_with_owner('Paid Co', null, 'professional') $$)
           || ' / ' || tests.attempt($$ select public.create_company_with_owner('Custom Co', null, 'enterprise') $$),
    '42501: self-service signup starts on the free plan / 42501: self-service signup starts on the free plan',
    'a self-service signup cannot pick a paid (or custom-priced) plan: only the backend assigns one');
select lives_ok($$ select public.create_company_with_owner('C Company', 'tourism') $$,
    'an authenticated user without a company can create one');
select results_eq(
    $$ select u.role::text, u.email, c.name, c.subscription_plan, c.current_user_count
         from public.users u join public.companies c on c.id = u.company_id
        where u.auth_user_id = tests.no_company_auth_id() $$,
    $$ values ('owner', 'nocompany@example.com', 'C Company', 'free', 1) $$,
    'create_company_with_owner makes the caller the owner of a new free company, atomically, with an exact member counter');

-- rule: one-owner (docs/rules.md)
-- Exactly one owner ------------------------------------------------------------
select tests.act_as_superuser();
select tests.new_auth_user('second.owner@example.com');
select throws_ok($$ select tests.add_member(tests.company_id('A'), null, tests.auth_id_of('second.owner@example.com'),
                                            'second.owner@example.com', 'owner') $$,
    '23505', null, 'a company can never have two owners');
select throws_ok($$ select tests.remove_members(array(select id from public.users where auth_user_id = tests.no_company_auth_id())) $$,
    '42501', 'company ' || (select id from public.companies where name = 'C Company') || ' would be left without an owner',
    'owner cannot be deleted while the company exists');
select throws_ok($$ update public.users set role = 'administrador' where id = tests.user_id('A', 'owner') $$,
    '42501', null, 'a company never ends a statement without an owner');

select tests.act_as_service();
select lives_ok($$ select tests.delete_companies(array(select id from public.companies where name = 'C Company')) $$,
    'deleting a company removes its owner and members with it');
select is((select count(*)::int from public.users where auth_user_id = tests.no_company_auth_id()), 0,
    'members of a deleted company are gone');

-- Isolation smoke (the full matrix is the isolation suite) ---------------------
select tests.act_as('A', 'operador');
select is((select count(*)::int from public.companies), 1, 'a member sees only their own company');
select is((select count(*)::int from public.users where company_id <> tests.company_id('A')), 0,
    'a member never sees members of another company');

-- rule: own-profile-only (docs/rules.md)
-- Own profile only -----------------------------------------------------------------
select is(tests.affected_rows($$ update public.users set full_name = 'Oscar O.' where id = tests.user_id('A', 'operador') $$), 1::bigint,
    'an operador can update their own full_name');
select throws_ok($$ update public.users set is_active = false where id = tests.user_id('A', 'operador') $$,
    '42501', null, 'a member cannot change their own active state');
select throws_ok($$ update public.users set email = 'other@example.com' where id = tests.user_id('A', 'operador') $$,
    '42501', null, 'a member cannot change their own email');
select is(tests.affected_rows($$ update public.users set full_name = 'x' where id = tests.user_id('A', 'supervisor') $$), 0::bigint,
    'an operador can only update their own full_name (not other members)');
select is(tests.member_delete('public.users', $$ id = tests.user_id('A', 'operador') $$), 0::bigint,
    'an operador cannot remove members, not even themselves');

-- Own company_id -----------------------------------------------------------------
select tests.act_as('A', 'administrador');
select throws_ok($$ update public.users set company_id = tests.company_id('B')
                     where id = tests.user_id('A', 'administrador') $$,
  tests.tenant_key_errcode('public.users'), null, 'an administrador cannot change their own company_id');
select tests.act_as('A', 'owner');
select throws_ok($$ update public.users set company_id = tests.company_id('B')
                     where id = tests.user_id('A', 'operador') $$,
  tests.tenant_key_errcode('public.users'), null, 'an owner cannot move a member into another company');
select tests.act_as_service();
select throws_ok($$ update public.users set company_id = tests.company_id('B')
                     where company_id = tests.company_id('A') and id = tests.user_id('A', 'operador') $$,
  tests.tenant_key_errcode('public.users'), tests.tenant_key_message('public.users'),
  'a member cannot be moved to another company, even by service_role');

select tests.act_as_service();
select throws_ok($$ update public.users set company_id = tests.company_id('B') where id = tests.user_id('A', 'supervisor') $$,
    tests.tenant_key_errcode('public.users'), null, 'a member can never be moved to another company');

-- rule: billing-columns-backend-only (docs/rules.md)
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
  tests.tenant_key_errcode('public.companies'), null, 'the owner cannot re-key the company');

-- Cross-company references and probing --------------------------------------------------
select is(tests.attempt_as('service_role', $$ select tests.add_member(tests.company_id('A'), null, tests.no_company_auth_id(),
  'nocompany@example.com', 'operador', tests.user_id('B', 'owner')) $$),
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

-- The owner's email is the identity's auth.users email, never the JWT's email claim ------
select tests.act_as_superuser();
select tests.new_auth_user('signup.real@example.com');
select tests.act_as_email('signup.real@example.com');
select set_config('request.jwt.claims', jsonb_set(current_setting('request.jwt.claims')::jsonb, '{email}',
                  '"ceo@bank.example.com"')::text, true);
select public.create_company_with_owner('Claimed Email Co');
select tests.act_as_superuser();
select is((select u.email from public.users u where u.auth_user_id = tests.auth_id_of('signup.real@example.com')),
    'signup.real@example.com',
    'create_company_with_owner records the identity''s auth.users email, not a forged JWT email claim');

-- rule: read-only-inactive-company (docs/rules.md)
-- Suspended and canceled companies are read-only ------------------------------------------
-- Every write an end user makes on a tenant table while the company is active
-- (catalog-driven: each table x insert/update/delete authenticated holds a grant for,
-- cloning one of A's rows) is refused with NA002 once the company is suspended.
select tests.act_as_superuser();
create temp table t_writes as
with tenant_tables as materialized (
  select c.oid, case when c.oid = 'public.companies'::regclass then 'id' else 'company_id' end as key
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('public', 'private', 'archive') and c.relkind in ('r', 'p') and not c.relispartition
     and (c.oid = 'public.companies'::regclass
          or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id' and not a.attisdropped))
)
select t.oid::regclass::text as rel, k.command,
       case k.command
         when 'update' then format('with w as (update %s set %I = %I where %I = %L returning 1) select count(*) from w',
                                   t.oid::regclass, u.attname, u.attname, t.key, tests.company_id('A'))
         when 'delete' then format('with w as (delete from %s where %I = %L returning 1) select count(*) from w',
                                   t.oid::regclass, t.key, tests.company_id('A'))
         else format('with w as (insert into %1$s (%2$s) select %2$s from jsonb_populate_record(null::%1$s, %3$L) returning 1) select count(*) from w',
                     t.oid::regclass, i.cols,
                     tests.row_of(t.oid::regclass, t.key, tests.company_id('A'))
                       || case when i.cols ~ '(^|, )id(,|$)' then jsonb_build_object('id', gen_random_uuid()) else '{}' end)
       end as sql,
       null::text as active, null::text as suspended
  from tenant_tables t
  cross join lateral (values ('insert'), ('update'), ('delete')) k(command)
  left join lateral (select a.attname from pg_attribute a
                      where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
                        and has_column_privilege('authenticated', t.oid, a.attnum, 'UPDATE')
                      order by a.attnum limit 1) u on true
  left join lateral (select string_agg(quote_ident(a.attname), ', ' order by a.attnum) as cols from pg_attribute a
                      where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
                        and has_column_privilege('authenticated', t.oid, a.attnum, 'INSERT')) i on true
 where case k.command when 'update' then u.attname is not null
                      when 'insert' then i.cols is not null
                      else has_table_privilege('authenticated', t.oid, 'DELETE') end;
update t_writes set active = tests.outcome_as('owner', sql);
select tests.act_as_service();
update public.companies set subscription_status = 'suspended' where id = tests.company_id('A');
select tests.act_as_superuser();
update t_writes set suspended = tests.outcome_as('owner', sql);
select ok((select count(*) from t_writes where active ~ '^ok: [1-9]') >= 6,
    'the catalog-driven write probe reaches tables an owner writes while the company is active');
select is((select string_agg(format('%s %s: %s -> %s', rel, command, active, suspended), '; ' order by rel, command)
             from t_writes
            where suspended !~ '^NA002: ' and (active ~ '^ok: [1-9]' or suspended ~ '^ok: [1-9]')),
    null, 'a suspended company is read-only: every insert/update/delete its owner could make on any tenant table is refused (NA002)');
select tests.act_as('A', 'owner');
select is((select count(*)::int from public.chatbots) > 0 and (select count(*)::int from public.users) > 0, true,
    'the owner of a suspended company still reads its data');
select throws_ok($$ update public.chatbots set name = name where id = tests.chatbot_id('A', 'spare') $$,
    'NA002', 'company is read-only: its subscription is suspended',
    'a write to a suspended company says why, with the NA002 code');
select is(tests.attempt($$ select public.create_chatbot_from_template('ecommerce', 'Sneaky bot') $$)
           || ' / ' || tests.attempt($$ select * from public.create_invitation('sneaky@example.com', 'operador') $$)
           || ' / ' || tests.attempt($$ select public.revoke_invitation(tests.invitation_id('A', 'pending')) $$),
    'NA002: company is read-only: its subscription is suspended / NA002: company is read-only: its subscription is suspended / NA002: company is read-only: its subscription is suspended',
    'the write RPCs (security definer, past RLS) refuse a suspended company too');
select throws_ok($$ update public.companies set subscription_status = 'active' where id = tests.company_id('A') $$,
    '42501', null, 'the owner cannot reactivate a suspended company (no column grant)');
select tests.act_as_superuser();
grant update (subscription_status) on public.companies to authenticated;
select tests.act_as_service();
update public.companies set subscription_status = 'active' where id = tests.company_id('A');
select tests.act_as('A', 'owner');
select throws_ok($$ update public.companies set subscription_status = 'canceled' where id = tests.company_id('A') $$,
    '42501', 'only the company profile (name, industry) can be changed by members',
    'billing columns change only by service_role, even if a column grant slipped in (companies_guard_update)');
select tests.act_as_superuser();
revoke update (subscription_status) on public.companies from authenticated;
select tests.act_as_service();
update public.companies set subscription_status = 'canceled' where id = tests.company_id('A');
select is(tests.attempt_as('administrador', $$ select tests.member_delete('public.chatbot_operators', 'true') $$), 'NA002: company is read-only: its subscription is canceled',
    'a canceled company is read-only too');
select tests.act_as_service();
update public.companies set subscription_status = 'past_due' where id = tests.company_id('A');
select is(tests.attempt_as('owner', $$ update public.chatbots set name = name where id = tests.chatbot_id('A', 'spare') $$), 'ok',
    'a past_due company keeps writing (grace period while billing retries)');
select tests.act_as_service();
update public.companies set subscription_status = 'suspended' where id = tests.company_id('A');
select is(tests.attempt($$ update public.chatbots set name = name || ' (backend)'
                            where company_id = tests.company_id('A') and id = tests.chatbot_id('A', 'spare') $$), 'ok',
    'service_role still writes to a suspended company (billing and the backend are unaffected)');
update public.companies set subscription_status = 'active' where id = tests.company_id('A');
select tests.act_as_superuser();
update t_writes set suspended = tests.outcome_as('owner', sql);
select is((select string_agg(format('%s %s: %s -> %s', rel, command, active, suspended), '; ' order by rel, command)
             from t_writes where suspended is distinct from active),
    null, 'reactivated by service_role, the company writes again exactly as before');

select * from finish();
rollback;
