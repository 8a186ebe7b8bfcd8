-- Hardening (attacks on the role hierarchy): members try to change their own
-- company or role, promote themselves or a peer, take over billing columns,
-- act after deactivation, forge JWT role claims or forge the HITL log.
-- Each assertion is one attack; its description is the rule that stops it.
begin;
select plan(24);

-- Attempt a statement as the current identity; always rolled back. Returns
-- 'ok', or 'SQLSTATE: message' with uuids replaced by <id>.
create function pg_temp.attempt(p_sql text) returns text
language plpgsql as $$
declare
  v text;
begin
  begin
    execute p_sql;
    v := 'ok';
    raise exception using errcode = 'NX998';
  exception
    when sqlstate 'NX998' then null;
    when others then
      v := sqlstate || ': ' || regexp_replace(sqlerrm, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g');
  end;
  return v;
end $$;

-- A second administrador and a second operador in company A (peers).
insert into public.users (company_id, id, auth_user_id, email, role) values
  (tests.company_id('A'), tests.new_id('user', 'A', 'second administrador'), tests.new_auth_user('admin2.a@example.com'),
   'admin2.a@example.com', 'administrador'),
  (tests.company_id('A'), tests.new_id('user', 'A', 'second operador'), tests.new_auth_user('operador2.a@example.com'),
   'operador2.a@example.com', 'operador');

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
  '42501', 'a member cannot be moved to another company',
  'a member cannot be moved to another company, even by service_role');

-- Own role -----------------------------------------------------------------------
select tests.act_as('A', 'operador');
select throws_ok($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$,
  '42501', 'you cannot change your own role, company or active state',
  'an operador cannot promote themselves to supervisor');
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
select is(tests.affected_rows($$ delete from public.users where id in (tests.user_id('A', 'owner'), tests.user_id('A', 'second administrador')) $$),
  0::bigint, 'an administrador cannot remove the owner or a peer administrador');
select throws_ok($$ select public.transfer_ownership(tests.user_id('A', 'administrador')) $$,
  '42501', 'only the owner can transfer ownership', 'an administrador cannot transfer ownership to themselves');
select tests.act_as('A', 'owner');
select throws_ok($$ update public.users set role = 'owner' where id = tests.user_id('A', 'administrador') $$,
  '42501', null, 'even the owner cannot create a second owner by update (ownership moves only via transfer_ownership)');
select tests.act_as('A', 'operador');
select throws_ok($$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
                    values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('A', 'operador')) $$,
  '42501', null, 'an operador cannot assign themselves to another chatbot');

-- Company plan, billing and usage counters -------------------------------------------
select tests.act_as('A', 'owner');
select is(
  array[pg_temp.attempt($$ update public.companies set subscription_plan = 'free' where id = tests.company_id('A') $$),
        pg_temp.attempt($$ update public.companies set subscription_status = 'active' where id = tests.company_id('A') $$),
        pg_temp.attempt($$ update public.companies set monthly_message_limit = 999999999 where id = tests.company_id('A') $$)],
  array['42501: permission denied for table companies', '42501: permission denied for table companies', '42501: permission denied for table companies'],
  'the owner cannot change the plan, the billing status or the message allowance of the company');
select is(
  array[pg_temp.attempt($$ update public.companies set current_chatbot_count = 0 where id = tests.company_id('A') $$),
        pg_temp.attempt($$ update public.company_message_usage set message_count = 0 where company_id = tests.company_id('A') $$),
        pg_temp.attempt($$ delete from public.company_message_usage where company_id = tests.company_id('A') $$)],
  array['42501: permission denied for table companies', '42501: permission denied for table company_message_usage',
        '42501: permission denied for table company_message_usage'],
  'the owner cannot reset the usage counters the plan limits are checked against');
select throws_ok($$ update public.companies set id = tests.company_id('B') where id = tests.company_id('A') $$,
  '42501', null, 'the owner cannot re-key the company');

-- A deactivated member keeps no rights ---------------------------------------------------
select tests.act_as('A', 'owner');
update public.users set is_active = false where id = tests.user_id('A', 'second administrador');
select tests.act_as('A', 'second administrador');
select is(
  array[(select count(*) from public.users)::text, (select count(*) from public.chatbots)::text,
        pg_temp.attempt($$ select * from public.create_invitation('late@example.com', 'operador') $$),
        tests.affected_rows($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$)::text],
  array['0', '0', '42501: only an owner or administrador can invite members', '0'],
  'a deactivated administrador reads nothing and can invite or change no one (its token is still valid)');

-- The HITL log cannot be forged (finding H-2, fixed by 4010_hardening_escalation_reason) ---
select tests.act_as('A', 'supervisor');
update public.conversations set status = 'active' where id = tests.conversation_id('A', 'unassigned-human');
select set_config('neurant.hitl_reason', 'keyword', true);
select set_config('neurant.hitl_detail', 'keyword "lawyer" in end-user message', true);
update public.conversations set status = 'waiting_human' where id = tests.conversation_id('A', 'unassigned-human');
select tests.act_as_superuser();
select results_eq(
  $$ select reason::text, detail, escalated_by from public.hitl_escalations
      where conversation_id = tests.conversation_id('A', 'unassigned-human') and reason <> 'human_request' $$,
  $$ values ('manual', '', tests.user_id('A', 'supervisor')) $$,
  'a member cannot forge the reason or hide the author of an escalation by setting neurant.hitl_reason');

-- ... while the automatic escalations of the triggers keep their reason.
select tests.act_as_service();
update public.conversations set status = 'active' where company_id = tests.company_id('A') and id = tests.conversation_id('A', 'assigned-human');
insert into public.messages (company_id, conversation_id, sender_type, content)
values (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'end_user', 'I will call my lawyer');
select tests.act_as_superuser();
select results_eq(
  $$ select reason::text, detail, escalated_by from public.hitl_escalations
      where conversation_id = tests.conversation_id('A', 'assigned-human') and detail like '%lawyer%' $$,
  $$ values ('keyword', 'keyword "lawyer" in end-user message', null::uuid) $$,
  'automatic escalations raised by the message triggers still record their reason');

select * from finish();
rollback;
