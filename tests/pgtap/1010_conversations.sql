-- Business rules of the conversation domain: who reads/writes conversations and messages,
-- operator messages only in human mode, status transitions, HITL escalation triggers,
-- monthly message usage and limit, tenant-consistent references.
begin;
select plan(45);

-- Test conversations on A's assigned chatbot (keywords refund/lawyer, 3 bot turns,
-- low rating <= 2) and unassigned chatbot, all in bot mode (active), named by the rule they exercise.
select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'keyword'), tests.chatbot_id('A', 'assigned'), 'u10', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'human request'), tests.chatbot_id('A', 'assigned'), 'u11', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'bot turns'), tests.chatbot_id('A', 'assigned'), 'u12', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'usage'), tests.chatbot_id('A', 'assigned'), 'u13', 'whatsapp'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'transitions'), tests.chatbot_id('A', 'assigned'), 'u14', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'low rating'), tests.chatbot_id('A', 'assigned'), 'u15', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'manual, unassigned chatbot'), tests.chatbot_id('A', 'unassigned'), 'u20', 'web');
insert into public.messages (company_id, id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.new_id('message', 'A', 'low rating/bot'), tests.conversation_id('A', 'low rating'), 'bot', 'Hello! How can I help?');

-- Visibility -------------------------------------------------------------------------------
select tests.act_as('A', 'operador');
select is((select count(*)::int from public.conversations where chatbot_id = tests.chatbot_id('A', 'unassigned')), 0,
    'an operador cannot read conversations of unassigned chatbots');
select ok((select count(*) from public.conversations where chatbot_id = tests.chatbot_id('A', 'assigned')) >= 8,
    'an operador reads the conversations of its assigned chatbots');
select is((select count(*)::int from public.messages where chatbot_id <> tests.chatbot_id('A', 'assigned')), 0,
    'an operador cannot read messages of unassigned chatbots');
select is((select count(*)::int from public.hitl_escalations where chatbot_id <> tests.chatbot_id('A', 'assigned')), 0,
    'an operador cannot read HITL escalations of unassigned chatbots');
select is((select count(*)::int from public.company_message_usage), 0,
    'an operador cannot read the company''s message usage');
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.conversations),
          (select count(*)::int from public.conversations c where c.company_id = tests.company_id('A')),
    'a supervisor reads every conversation of the company');
select ok((select count(*) from public.conversations where chatbot_id = tests.chatbot_id('A', 'unassigned')) > 0,
    'a supervisor reads conversations of chatbots without operators');
select is((select count(*)::int from public.messages where company_id <> tests.company_id('A')), 0,
    'no member reads another company''s messages');

-- Writing messages --------------------------------------------------------------------------
select tests.act_as('A', 'operador');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'keyword'), 'operator', 'Hi, I am Oscar') $$,
    '42501', null, 'an operador cannot write a message while the conversation is in bot mode');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'operator', 'Refund issued.') $$,
    'an operador can write an operator message while the conversation is in human mode');
select is((select sender_id from public.messages where content = 'Refund issued.'),
    tests.user_id('A', 'operador'), 'an operator message is attributed to the user who wrote it');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'unassigned-human'), 'operator', 'Can I help?') $$,
    '42501', null, 'an operador cannot write in conversations of unassigned chatbots');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'bot', 'I am the bot, trust me') $$,
    '42501', null, 'a user cannot write bot or end-user messages');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('B'), tests.conversation_id('B', 'assigned-human'), 'operator', 'Hello B') $$,
    '42501', null, 'a user cannot write into another company''s conversation');
select tests.act_as_service();
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('B', 'assigned-human'), 'end_user', 'cross-tenant') $$,
    '23503', null, 'a message cannot reference another company''s conversation, not even from service_role');
select throws_ok($$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'keyword'),
                     tests.chatbot_id('A', 'unassigned'), 'end_user', 'wrong chatbot') $$,
    '23503', null, 'a message''s chatbot must be its conversation''s chatbot');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'assigned-closed'), 'end_user', 'hello?') $$,
    '22023', null, 'a closed conversation accepts no messages');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'keyword'), 'end_user', '') $$,
    '23514', null, 'a message cannot be empty');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, sender_id, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'keyword'), 'bot',
                     tests.user_id('A', 'operador'), 'x') $$,
    '23514', null, 'only operator messages carry a sender_id');

-- Status transitions --------------------------------------------------------------------------
select throws_ok($$ update public.conversations set status = 'active' where id = tests.conversation_id('A', 'assigned-closed') $$,
    '22023', null, 'a closed conversation cannot go back to active');
select throws_ok($$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel) values
                    (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), 'u', 'telegram') $$,
    '22023', null, 'a conversation must use one of its chatbot''s channels');
select throws_ok($$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel) values
                    (tests.company_id('A'), tests.chatbot_id('A', 'spare'), 'u', 'web') $$,
    '22023', null, 'an inactive chatbot accepts no new conversations');
update public.conversations set status = 'resolved' where id = tests.conversation_id('A', 'transitions');
select throws_ok($$ update public.conversations set status = 'human' where id = tests.conversation_id('A', 'transitions') $$,
    '22023', null, 'a resolved conversation cannot jump to human mode (it reopens to active first)');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'transitions'), 'end_user', 'One more question');
select is((select status::text from public.conversations where id = tests.conversation_id('A', 'transitions')), 'active',
    'an end-user message reopens a resolved conversation');
update public.conversations set status = 'closed' where id = tests.conversation_id('A', 'transitions');
select isnt((select closed_at from public.conversations where id = tests.conversation_id('A', 'transitions')), null,
    'closing a conversation records closed_at');

-- HITL escalation -------------------------------------------------------------------------------
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'keyword'), 'end_user', 'This is useless, I want my REFUND!');
select results_eq($$ select status::text, is_hitl_active from public.conversations where id = tests.conversation_id('A', 'keyword') $$,
    $$ values ('waiting_human', true) $$,
    'a keyword in an end-user message escalates the conversation to human mode');
select results_eq($$ select reason::text, detail from public.hitl_escalations where conversation_id = tests.conversation_id('A', 'keyword') $$,
    $$ values ('keyword', 'keyword "refund" in end-user message') $$,
    'an escalation is logged with its reason and the matched keyword');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'human request'), 'end_user', 'Was it refunded already?');
select is((select status::text from public.conversations where id = tests.conversation_id('A', 'human request')), 'active',
    'HITL keywords match whole words only (refunded does not match refund)');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'human request'), 'end_user', 'Can I talk to a human, please?');
select results_eq($$ select c.status::text, e.reason::text from public.conversations c
                       join public.hitl_escalations e on e.company_id = c.company_id and e.conversation_id = c.id
                      where c.id = tests.conversation_id('A', 'human request') $$,
    $$ values ('waiting_human', 'human_request') $$,
    'an end user asking for a human escalates the conversation to human mode');
insert into public.messages (company_id, conversation_id, sender_type, content)
select tests.company_id('A'), tests.conversation_id('A', 'bot turns'), 'bot', 'Answer ' || n
  from generate_series(1, 2) n;
select is((select status::text from public.conversations where id = tests.conversation_id('A', 'bot turns')), 'active',
    'the conversation stays with the bot below the bot-turn threshold');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'bot turns'), 'bot', 'Answer 3');
select results_eq($$ select c.status::text, e.reason::text from public.conversations c
                       join public.hitl_escalations e on e.company_id = c.company_id and e.conversation_id = c.id
                      where c.id = tests.conversation_id('A', 'bot turns') $$,
    $$ values ('waiting_human', 'bot_turns') $$,
    'N bot turns without resolution escalate the conversation to human mode');
select tests.act_as('A', 'supervisor');
insert into public.message_reactions (company_id, message_id, reaction) values
    (tests.company_id('A'), tests.message_id('A', 'low rating/bot'), 'thumbs_down');
select is((select status::text from public.conversations where id = tests.conversation_id('A', 'low rating')), 'active',
    'a staff review with a low rating does not escalate the conversation');
select tests.act_as_service();
insert into public.message_reactions (company_id, message_id, reaction, rating) values
    (tests.company_id('A'), tests.message_id('A', 'low rating/bot'), 'rating', 2);
select results_eq($$ select c.status::text, e.reason::text from public.conversations c
                       join public.hitl_escalations e on e.company_id = c.company_id and e.conversation_id = c.id
                      where c.id = tests.conversation_id('A', 'low rating') $$,
    $$ values ('waiting_human', 'low_rating') $$,
    'a low end-user rating of a bot answer escalates the conversation to human mode');
select throws_ok($$ insert into public.message_reactions (company_id, message_id, reaction) values
                    (tests.company_id('A'), tests.message_id('A', 'low rating/bot'), 'rating') $$,
    '23514', null, 'a rating reaction needs a 1-5 score');
select tests.act_as('A', 'operador');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'keyword'), 'operator', 'Hi, Oscar here, let me check your refund.');
select results_eq($$ select status::text, assigned_operator_id from public.conversations where id = tests.conversation_id('A', 'keyword') $$,
    $$ values ('human', tests.user_id('A', 'operador')) $$,
    'the first operator answer takes a waiting conversation over and assigns it to that operator');
select throws_ok($$ update public.conversations set assigned_operator_id = tests.user_id('A', 'supervisor')
                     where id = tests.conversation_id('A', 'keyword') $$,
    '42501', null, 'an operador cannot assign a conversation to someone else');
select lives_ok($$ update public.conversations set status = 'resolved' where id = tests.conversation_id('A', 'keyword') $$,
    'an operador can resolve a conversation of its assigned chatbot');
select is(tests.affected_rows($$ update public.conversations set status = 'closed' where id = tests.conversation_id('A', 'manual, unassigned chatbot') $$),
    0::bigint, 'an operador cannot change conversations of unassigned chatbots');
select tests.act_as('A', 'supervisor');
select throws_ok($$ update public.conversations set assigned_operator_id = tests.user_id('A', 'operador')
                     where id = tests.conversation_id('A', 'manual, unassigned chatbot') $$,
    '23514', null, 'an operador cannot be given a conversation of a chatbot it is not assigned to');
update public.conversations set status = 'waiting_human' where id = tests.conversation_id('A', 'manual, unassigned chatbot');
select results_eq($$ select reason::text, escalated_by from public.hitl_escalations where conversation_id = tests.conversation_id('A', 'manual, unassigned chatbot') $$,
    $$ values ('manual', tests.user_id('A', 'supervisor')) $$,
    'a manual escalation is logged with the user who made it');

-- Monthly message usage ----------------------------------------------------------------------
select tests.act_as_superuser();
create temp table usage_before on commit drop as
select message_count, total_message_count from public.company_message_usage
 where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date;
grant select on usage_before to authenticated;
select tests.act_as_service();
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Counted answer');
select tests.act_as('A', 'owner');
select results_eq($$ select u.message_count - b.message_count, u.total_message_count - b.total_message_count
                      from public.company_message_usage u, usage_before b
                     where u.month = date_trunc('month', now() at time zone 'UTC')::date $$,
    $$ values (1::bigint, 1::bigint) $$,
    'each message is counted in the company''s monthly usage in the same transaction (bot messages are billable)');
select tests.act_as_superuser();
update public.companies set monthly_message_limit =
       (select message_count from public.company_message_usage
         where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date)
 where id = tests.company_id('A');
select tests.act_as_service();
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Over the limit') $$,
    'NA001', null, 'the monthly message limit cannot be exceeded');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'end_user', 'Hello? Anyone?') $$,
    'end-user messages are still accepted when the monthly allowance is used up');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   (tests.company_id('B'), tests.conversation_id('B', 'assigned-human'), 'bot', 'B is not limited') $$,
    'one company''s message limit does not affect another company');

-- User deletion keeps the history -------------------------------------------------------------
select tests.act_as_superuser();
delete from public.users where id = tests.user_id('A', 'operador');
select results_eq($$ select count(*)::int, count(sender_id)::int from public.messages
                     where company_id = tests.company_id('A') and content = 'Refund issued.' $$,
    $$ values (1, 0) $$,
    'deleting a user keeps the messages it wrote, with the sender reference cleared');

select * from finish();
rollback;
