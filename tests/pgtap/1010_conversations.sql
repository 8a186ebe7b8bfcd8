-- Business rules of the conversation domain: who reads/writes conversations and messages,
-- operator messages only in human mode, status transitions, HITL escalation triggers,
-- monthly message usage and limit, tenant-consistent references.
begin;
select plan(45);

-- Test conversations on A's assigned chatbot (...0001: keywords refund/lawyer, 3 bot turns,
-- low rating <= 2) and unassigned chatbot (...0002), all in bot mode (active).
select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000010', 'aaaaaaaa-0000-0000-0001-000000000001', 'u10', 'web'),
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000011', 'aaaaaaaa-0000-0000-0001-000000000001', 'u11', 'web'),
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000012', 'aaaaaaaa-0000-0000-0001-000000000001', 'u12', 'web'),
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000013', 'aaaaaaaa-0000-0000-0001-000000000001', 'u13', 'whatsapp'),
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000014', 'aaaaaaaa-0000-0000-0001-000000000001', 'u14', 'web'),
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000015', 'aaaaaaaa-0000-0000-0001-000000000001', 'u15', 'web'),
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000020', 'aaaaaaaa-0000-0000-0001-000000000002', 'u20', 'web');
insert into public.messages (company_id, id, conversation_id, sender_type, content) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0004-000000000100', 'aaaaaaaa-0000-0000-0003-000000000015', 'bot', 'Hello! How can I help?');

-- Visibility -------------------------------------------------------------------------------
select tests.act_as('aaaaaaaa-0000-0000-0000-000000000004');
select is((select count(*)::int from public.conversations where chatbot_id = 'aaaaaaaa-0000-0000-0001-000000000002'), 0,
    'an operador cannot read conversations of unassigned chatbots');
select ok((select count(*) from public.conversations where chatbot_id = 'aaaaaaaa-0000-0000-0001-000000000001') >= 8,
    'an operador reads the conversations of its assigned chatbots');
select is((select count(*)::int from public.messages where chatbot_id <> 'aaaaaaaa-0000-0000-0001-000000000001'), 0,
    'an operador cannot read messages of unassigned chatbots');
select is((select count(*)::int from public.hitl_escalations where chatbot_id <> 'aaaaaaaa-0000-0000-0001-000000000001'), 0,
    'an operador cannot read HITL escalations of unassigned chatbots');
select is((select count(*)::int from public.company_message_usage), 0,
    'an operador cannot read the company''s message usage');
select tests.act_as('aaaaaaaa-0000-0000-0000-000000000003');
select is((select count(*)::int from public.conversations),
          (select count(*)::int from public.conversations c where c.company_id = 'aaaaaaaa-0000-0000-0000-000000000000'),
    'a supervisor reads every conversation of the company');
select ok((select count(*) from public.conversations where chatbot_id = 'aaaaaaaa-0000-0000-0001-000000000002') > 0,
    'a supervisor reads conversations of chatbots without operators');
select is((select count(*)::int from public.messages where company_id <> 'aaaaaaaa-0000-0000-0000-000000000000'), 0,
    'no member reads another company''s messages');

-- Writing messages --------------------------------------------------------------------------
select tests.act_as('aaaaaaaa-0000-0000-0000-000000000004');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000010', 'operator', 'Hi, I am Oscar') $$,
    '42501', null, 'an operador cannot write a message while the conversation is in bot mode');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000001', 'operator', 'Refund issued.') $$,
    'an operador can write an operator message while the conversation is in human mode');
select is((select sender_id from public.messages where content = 'Refund issued.'),
    'aaaaaaaa-0000-0000-0000-000000000004'::uuid, 'an operator message is attributed to the user who wrote it');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000003', 'operator', 'Can I help?') $$,
    '42501', null, 'an operador cannot write in conversations of unassigned chatbots');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000001', 'bot', 'I am the bot, trust me') $$,
    '42501', null, 'a user cannot write bot or end-user messages');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    ('bbbbbbbb-0000-0000-0000-000000000000', 'bbbbbbbb-0000-0000-0003-000000000001', 'operator', 'Hello B') $$,
    '42501', null, 'a user cannot write into another company''s conversation');
select tests.act_as_service();
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'bbbbbbbb-0000-0000-0003-000000000001', 'end_user', 'cross-tenant') $$,
    '23503', null, 'a message cannot reference another company''s conversation, not even from service_role');
select throws_ok($$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000010',
                     'aaaaaaaa-0000-0000-0001-000000000002', 'end_user', 'wrong chatbot') $$,
    '23503', null, 'a message''s chatbot must be its conversation''s chatbot');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000002', 'end_user', 'hello?') $$,
    '22023', null, 'a closed conversation accepts no messages');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000010', 'end_user', '') $$,
    '23514', null, 'a message cannot be empty');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, sender_id, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000010', 'bot',
                     'aaaaaaaa-0000-0000-0000-000000000004', 'x') $$,
    '23514', null, 'only operator messages carry a sender_id');

-- Status transitions --------------------------------------------------------------------------
select throws_ok($$ update public.conversations set status = 'active' where id = 'aaaaaaaa-0000-0000-0003-000000000002' $$,
    '22023', null, 'a closed conversation cannot go back to active');
select throws_ok($$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0001-000000000002', 'u', 'telegram') $$,
    '22023', null, 'a conversation must use one of its chatbot''s channels');
select throws_ok($$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'cccccccc-0000-0000-0001-000000000003', 'u', 'web') $$,
    '22023', null, 'an inactive chatbot accepts no new conversations');
update public.conversations set status = 'resolved' where id = 'aaaaaaaa-0000-0000-0003-000000000014';
select throws_ok($$ update public.conversations set status = 'human' where id = 'aaaaaaaa-0000-0000-0003-000000000014' $$,
    '22023', null, 'a resolved conversation cannot jump to human mode (it reopens to active first)');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000014', 'end_user', 'One more question');
select is((select status::text from public.conversations where id = 'aaaaaaaa-0000-0000-0003-000000000014'), 'active',
    'an end-user message reopens a resolved conversation');
update public.conversations set status = 'closed' where id = 'aaaaaaaa-0000-0000-0003-000000000014';
select isnt((select closed_at from public.conversations where id = 'aaaaaaaa-0000-0000-0003-000000000014'), null,
    'closing a conversation records closed_at');

-- HITL escalation -------------------------------------------------------------------------------
insert into public.messages (company_id, conversation_id, sender_type, content) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000010', 'end_user', 'This is useless, I want my REFUND!');
select results_eq($$ select status::text, is_hitl_active from public.conversations where id = 'aaaaaaaa-0000-0000-0003-000000000010' $$,
    $$ values ('waiting_human', true) $$,
    'a keyword in an end-user message escalates the conversation to human mode');
select results_eq($$ select reason::text, detail from public.hitl_escalations where conversation_id = 'aaaaaaaa-0000-0000-0003-000000000010' $$,
    $$ values ('keyword', 'keyword "refund" in end-user message') $$,
    'an escalation is logged with its reason and the matched keyword');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000011', 'end_user', 'Was it refunded already?');
select is((select status::text from public.conversations where id = 'aaaaaaaa-0000-0000-0003-000000000011'), 'active',
    'HITL keywords match whole words only (refunded does not match refund)');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000011', 'end_user', 'Can I talk to a human, please?');
select results_eq($$ select c.status::text, e.reason::text from public.conversations c
                       join public.hitl_escalations e on e.company_id = c.company_id and e.conversation_id = c.id
                      where c.id = 'aaaaaaaa-0000-0000-0003-000000000011' $$,
    $$ values ('waiting_human', 'human_request') $$,
    'an end user asking for a human escalates the conversation to human mode');
insert into public.messages (company_id, conversation_id, sender_type, content)
select 'aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000012', 'bot', 'Answer ' || n
  from generate_series(1, 2) n;
select is((select status::text from public.conversations where id = 'aaaaaaaa-0000-0000-0003-000000000012'), 'active',
    'the conversation stays with the bot below the bot-turn threshold');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000012', 'bot', 'Answer 3');
select results_eq($$ select c.status::text, e.reason::text from public.conversations c
                       join public.hitl_escalations e on e.company_id = c.company_id and e.conversation_id = c.id
                      where c.id = 'aaaaaaaa-0000-0000-0003-000000000012' $$,
    $$ values ('waiting_human', 'bot_turns') $$,
    'N bot turns without resolution escalate the conversation to human mode');
select tests.act_as('aaaaaaaa-0000-0000-0000-000000000003');
insert into public.message_reactions (company_id, message_id, reaction) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0004-000000000100', 'thumbs_down');
select is((select status::text from public.conversations where id = 'aaaaaaaa-0000-0000-0003-000000000015'), 'active',
    'a staff review with a low rating does not escalate the conversation');
select tests.act_as_service();
insert into public.message_reactions (company_id, message_id, reaction, rating) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0004-000000000100', 'rating', 2);
select results_eq($$ select c.status::text, e.reason::text from public.conversations c
                       join public.hitl_escalations e on e.company_id = c.company_id and e.conversation_id = c.id
                      where c.id = 'aaaaaaaa-0000-0000-0003-000000000015' $$,
    $$ values ('waiting_human', 'low_rating') $$,
    'a low end-user rating of a bot answer escalates the conversation to human mode');
select throws_ok($$ insert into public.message_reactions (company_id, message_id, reaction) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0004-000000000100', 'rating') $$,
    '23514', null, 'a rating reaction needs a 1-5 score');
select tests.act_as('aaaaaaaa-0000-0000-0000-000000000004');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000010', 'operator', 'Hi, Oscar here, let me check your refund.');
select results_eq($$ select status::text, assigned_operator_id from public.conversations where id = 'aaaaaaaa-0000-0000-0003-000000000010' $$,
    $$ values ('human', 'aaaaaaaa-0000-0000-0000-000000000004'::uuid) $$,
    'the first operator answer takes a waiting conversation over and assigns it to that operator');
select throws_ok($$ update public.conversations set assigned_operator_id = 'aaaaaaaa-0000-0000-0000-000000000003'
                     where id = 'aaaaaaaa-0000-0000-0003-000000000010' $$,
    '42501', null, 'an operador cannot assign a conversation to someone else');
select lives_ok($$ update public.conversations set status = 'resolved' where id = 'aaaaaaaa-0000-0000-0003-000000000010' $$,
    'an operador can resolve a conversation of its assigned chatbot');
select is(tests.affected_rows($$ update public.conversations set status = 'closed' where id = 'aaaaaaaa-0000-0000-0003-000000000020' $$),
    0::bigint, 'an operador cannot change conversations of unassigned chatbots');
select tests.act_as('aaaaaaaa-0000-0000-0000-000000000003');
select throws_ok($$ update public.conversations set assigned_operator_id = 'aaaaaaaa-0000-0000-0000-000000000004'
                     where id = 'aaaaaaaa-0000-0000-0003-000000000020' $$,
    '23514', null, 'an operador cannot be given a conversation of a chatbot it is not assigned to');
update public.conversations set status = 'waiting_human' where id = 'aaaaaaaa-0000-0000-0003-000000000020';
select results_eq($$ select reason::text, escalated_by from public.hitl_escalations where conversation_id = 'aaaaaaaa-0000-0000-0003-000000000020' $$,
    $$ values ('manual', 'aaaaaaaa-0000-0000-0000-000000000003'::uuid) $$,
    'a manual escalation is logged with the user who made it');

-- Monthly message usage ----------------------------------------------------------------------
select tests.act_as_superuser();
create temp table usage_before on commit drop as
select message_count, total_message_count from public.company_message_usage
 where company_id = 'aaaaaaaa-0000-0000-0000-000000000000' and month = date_trunc('month', now() at time zone 'UTC')::date;
grant select on usage_before to authenticated;
select tests.act_as_service();
insert into public.messages (company_id, conversation_id, sender_type, content) values
    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000013', 'bot', 'Counted answer');
select tests.act_as('aaaaaaaa-0000-0000-0000-000000000001');
select results_eq($$ select u.message_count - b.message_count, u.total_message_count - b.total_message_count
                      from public.company_message_usage u, usage_before b
                     where u.month = date_trunc('month', now() at time zone 'UTC')::date $$,
    $$ values (1::bigint, 1::bigint) $$,
    'each message is counted in the company''s monthly usage in the same transaction (bot messages are billable)');
select tests.act_as_superuser();
update public.companies set monthly_message_limit =
       (select message_count from public.company_message_usage
         where company_id = 'aaaaaaaa-0000-0000-0000-000000000000' and month = date_trunc('month', now() at time zone 'UTC')::date)
 where id = 'aaaaaaaa-0000-0000-0000-000000000000';
select tests.act_as_service();
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000013', 'bot', 'Over the limit') $$,
    'NA001', null, 'the monthly message limit cannot be exceeded');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0003-000000000013', 'end_user', 'Hello? Anyone?') $$,
    'end-user messages are still accepted when the monthly allowance is used up');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   ('bbbbbbbb-0000-0000-0000-000000000000', 'bbbbbbbb-0000-0000-0003-000000000001', 'bot', 'B is not limited') $$,
    'one company''s message limit does not affect another company');

-- User deletion keeps the history -------------------------------------------------------------
select tests.act_as_superuser();
delete from public.users where id = 'aaaaaaaa-0000-0000-0000-000000000004';
select results_eq($$ select count(*)::int, count(sender_id)::int from public.messages
                     where company_id = 'aaaaaaaa-0000-0000-0000-000000000000' and content = 'Refund issued.' $$,
    $$ values (1, 0) $$,
    'deleting a user keeps the messages it wrote, with the sender reference cleared');

select * from finish();
rollback;
