-- Business rules of the chatbot domain: templates, plan chatbot limit, who may manage
-- chatbots and operator assignments, tenant-consistent chatbot references (also for
-- service_role) and probing of another company's chatbots through assignments.
-- What an operador may read is 1005_operador_scope.sql.
begin;
select plan(34);

-- Templates ----------------------------------------------------------------------------
select tests.act_as('A', 'operador');
select ok((select count(*) from public.chatbot_templates where code in
           ('customer_support', 'ecommerce', 'healthcare_appointments', 'real_estate')) = 4,
    'the industry presets (customer support, e-commerce, healthcare appointments, real estate) are seeded and readable by every member');
select tests.act_as_no_company();
select ok((select count(*) from public.chatbot_templates) >= 4,
    'an authenticated user without a company can read the chatbot templates');
select tests.act_as('A', 'owner');
select throws_ok($$ update public.chatbot_templates set name = 'Hacked' where code = 'ecommerce' $$, '42501', null,
    'only service_role can change chatbot templates (even an owner cannot)');
select tests.act_as_anon();
select throws_ok($$ select count(*) from public.chatbot_templates $$, '42501', null,
    'anon cannot read chatbot templates');

-- Create from template ------------------------------------------------------------------
select tests.act_as('A', 'administrador');
select lives_ok($$ select public.create_chatbot_from_template('healthcare_appointments', 'Clinic bot') $$,
    'an administrador can create a chatbot from a template');
select results_eq(
    $$ select c.template_code, c.system_prompt = t.system_prompt, c.channels = t.default_channels,
              c.hitl_keywords = t.hitl_keywords, c.hitl_max_bot_turns, c.created_by
         from public.chatbots c join public.chatbot_templates t on t.code = c.template_code
        where c.name = 'Clinic bot' $$,
    $$ values ('healthcare_appointments'::text, true, true, true, 4::smallint, tests.user_id('A', 'administrador')) $$,
    'a chatbot created from a template copies its prompt, channels and HITL settings and records its creator');
select throws_ok($$ select public.create_chatbot_from_template('no_such_template', 'X') $$, '22023', null,
    'a chatbot cannot be created from an unknown template');
select tests.act_as('A', 'supervisor');
select throws_ok($$ select public.create_chatbot_from_template('ecommerce', 'Shop bot') $$, '42501', null,
    'a supervisor cannot create chatbots');
select tests.act_as('A', 'operador');
select throws_ok($$ insert into public.chatbots (company_id, name, system_prompt) values
                    (tests.company_id('A'), 'Rogue bot', 'x') $$, '42501', null,
    'an operador cannot create chatbots');
select tests.act_as('A', 'owner');
select throws_ok($$ insert into public.chatbots (company_id, name, system_prompt) values
                    (tests.company_id('B'), 'Planted bot', 'x') $$, '42501', null,
    'an owner cannot create a chatbot in another company');

-- rule: chatbot-limit (docs/rules.md)
-- Plan chatbot limit ---------------------------------------------------------------------
select tests.act_as_superuser();
select is((select current_chatbot_count from public.companies where id = tests.company_id('A')),
          (select count(*)::int from public.chatbots where company_id = tests.company_id('A')),
    'the live chatbot counter equals the number of chatbots of the company');
update public.subscription_plans set max_chatbots = (select current_chatbot_count from public.companies
                                                      where id = tests.company_id('A'))
 where code = 'enterprise';
select tests.act_as('A', 'owner');
select throws_ok($$ select public.create_chatbot_from_template('ecommerce', 'One too many') $$, 'NA001', null,
    'the chatbot limit of the plan cannot be exceeded');
select is(tests.member_delete('public.chatbots', $$ company_id = tests.company_id('A') and name = 'Clinic bot' $$), 1::bigint,
    'an owner can delete a chatbot');
select lives_ok($$ select public.create_chatbot_from_template('ecommerce', 'Shop bot') $$,
    'deleting a chatbot frees a unit of the plan''s chatbot limit');
select tests.act_as_superuser();
select is((select current_chatbot_count from public.companies where id = tests.company_id('A')),
          (select count(*)::int from public.chatbots where company_id = tests.company_id('A')),
    'the live chatbot counter stays exact through inserts and deletes');

-- Chatbot constraints ----------------------------------------------------------------------
select throws_ok($$ update public.chatbots set channels = '{web,web}' where id = tests.chatbot_id('A', 'assigned') $$,
    '23514', null, 'a chatbot cannot list the same channel twice');
select throws_ok($$ update public.chatbots set channels = '{}' where id = tests.chatbot_id('A', 'assigned') $$,
    '23514', null, 'a chatbot needs at least one channel');
select throws_ok($$ update public.chatbots set hitl_low_rating_threshold = 6 where id = tests.chatbot_id('A', 'assigned') $$,
    '23514', null, 'the HITL low-rating threshold is a 1-5 score');

-- Visibility ----------------------------------------------------------------------------------
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.chatbots),
          (select current_chatbot_count from public.companies), 'a supervisor reads every chatbot of the company');
select is(tests.affected_rows($$ update public.chatbots set name = 'Renamed' where id = tests.chatbot_id('A', 'assigned') $$),
    0::bigint, 'a supervisor cannot change chatbots');
select tests.act_as('A', 'owner');
select is((select count(*)::int from public.chatbots where company_id <> tests.company_id('A')), 0,
    'no member reads another company''s chatbots');
select tests.act_as('A', 'operador');
select throws_ok($$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
                    values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('A', 'operador')) $$,
  '42501', null, 'an operador cannot assign themselves to another chatbot');

-- rule: operator-assignments (docs/rules.md)
-- Operator assignments ----------------------------------------------------------------------
select tests.act_as('A', 'supervisor');
select throws_ok($$ insert into public.chatbot_operators (company_id, chatbot_id, user_id) values
                    (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('A', 'administrador')) $$,
    '23514', null, 'only users with role operador can be assigned to a chatbot');
select lives_ok($$ insert into public.chatbot_operators (company_id, chatbot_id, user_id) values
                   (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('A', 'operador')) $$,
    'a supervisor can assign an operador to a chatbot');
select is((select assigned_by from public.chatbot_operators
            where chatbot_id = tests.chatbot_id('A', 'unassigned') and user_id = tests.user_id('A', 'operador')),
    tests.user_id('A', 'supervisor'), 'an assignment records who made it');
select tests.act_as('A', 'operador');
select throws_ok($$ insert into public.chatbot_operators (company_id, chatbot_id, user_id) values
                    (tests.company_id('A'), tests.chatbot_id('A', 'spare'), tests.user_id('A', 'operador')) $$,
    '42501', null, 'an operador cannot assign itself to a chatbot');
select tests.act_as('A', 'supervisor');
select is(tests.member_delete('public.chatbot_operators',
                                  $$ chatbot_id = tests.chatbot_id('A', 'unassigned') $$),
    1::bigint, 'a supervisor can unassign an operador');
select tests.act_as_service();
select throws_ok($$ insert into public.chatbot_operators (company_id, chatbot_id, user_id) values
                    (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('B', 'operador')) $$,
    '23503', null, 'a chatbot cannot be assigned to a user of another company, not even by service_role');

-- Cross-company references and probing --------------------------------------------------
-- service_role: every FK path into another company fails -----------------------------
select is(tests.attempt_as('service_role', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
  values (tests.company_id('A'), tests.chatbot_id('B', 'assigned'), tests.user_id('A', 'operador')) $$),
  '23503: insert or update on table "chatbot_operators" violates foreign key constraint "chatbot_operators_chatbot_fkey"',
  'an assignment cannot reference another company''s chatbot, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
  values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('B', 'operador')) $$),
  '23503: insert or update on table "chatbot_operators" violates foreign key constraint "chatbot_operators_user_fkey"',
  'an assignment cannot reference another company''s operador, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id, assigned_by)
  values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('A', 'operador'), tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "chatbot_operators" violates foreign key constraint "chatbot_operators_assigned_by_fkey"',
  'an assignment cannot name another company''s member as assigner, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.chatbots (company_id, name, system_prompt, created_by)
  values (tests.company_id('A'), 'n', 'p', tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "chatbots" violates foreign key constraint "chatbots_created_by_fkey"',
  'a chatbot cannot name another company''s member as creator, even for service_role');
select is(tests.same_either_way('supervisor', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
    values (tests.company_id('B'), $1, $2) $$,
    array[tests.chatbot_id('B', 'unassigned'), tests.user_id('B', 'supervisor')]),
  'same: 42501: new row violates row-level security policy for table "chatbot_operators"',
  'an assignment proposed in another company does not reveal that company''s members or their roles');
select is(tests.same_either_way('supervisor', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
    values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), $1) $$,
    array[tests.user_id('B', 'supervisor')]),
  'same: 23503: insert or update on table "chatbot_operators" violates foreign key constraint "chatbot_operators_user_fkey"',
  'assigning another company''s member to a chatbot fails exactly like assigning an unknown user');

select * from finish();
rollback;
