-- Business rules of the conversation domain: who reads/writes conversations and messages,
-- operator messages only in human mode, status transitions, HITL escalation triggers
-- (not forgeable), tenant-consistent references (also for service_role) and probing
-- of another company's conversations. Operador scope: 1005; monthly message usage: 1015.
begin;
select plan(60);

-- Test conversations on A's assigned chatbot (keywords refund/lawyer, 3 bot turns,
-- low rating <= 2) and unassigned chatbot, all in bot mode (active), named by the rule they exercise.
select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'keyword'), tests.chatbot_id('A', 'assigned'), 'u10', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'human request'), tests.chatbot_id('A', 'assigned'), 'u11', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'bot turns'), tests.chatbot_id('A', 'assigned'), 'u12', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'transitions'), tests.chatbot_id('A', 'assigned'), 'u14', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'low rating'), tests.chatbot_id('A', 'assigned'), 'u15', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'manual, unassigned chatbot'), tests.chatbot_id('A', 'unassigned'), 'u20', 'web');
insert into public.messages (company_id, id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.new_id('message', 'A', 'low rating/bot'), tests.conversation_id('A', 'low rating'), 'bot', 'Hello! How can I help?');

-- Visibility -------------------------------------------------------------------------------
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.conversations),
          (select count(*)::int from public.conversations c where c.company_id = tests.company_id('A')),
    'a supervisor reads every conversation of the company');
select ok((select count(*) from public.conversations where chatbot_id = tests.chatbot_id('A', 'unassigned')) > 0,
    'a supervisor reads conversations of chatbots without operators');
select is((select count(*)::int from public.messages where company_id <> tests.company_id('A')), 0,
    'no member reads another company''s messages');

-- rule: operator-messages-human-mode (docs/rules.md)
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
                    (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'bot', 'I am the bot, trust me') $$,
    '42501', null, 'a user cannot write bot or end-user messages');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('B'), tests.conversation_id('B', 'assigned-human'), 'operator', 'Hello B') $$,
    '42501', null, 'a user cannot write into another company''s conversation');
select tests.act_as_service();
-- rule: bot-silent-in-human-mode (docs/rules.md)
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'bot', 'Can I help?') $$,
    'NA003', null, 'the bot cannot answer while a human has the conversation, not even as service_role');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'end_user', 'Still there?') $$,
    'the end user keeps writing while a human has the conversation');
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

-- rule: conversation-transitions (docs/rules.md)
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

-- rule: hitl-escalation (docs/rules.md)
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
-- rule: conversation-assignee-in-scope (docs/rules.md)
select throws_ok($$ update public.conversations set assigned_operator_id = tests.user_id('A', 'supervisor')
                     where id = tests.conversation_id('A', 'keyword') $$,
    '42501', null, 'an operador cannot assign a conversation to someone else');
select lives_ok($$ update public.conversations set status = 'resolved' where id = tests.conversation_id('A', 'keyword') $$,
    'an operador can resolve a conversation of its assigned chatbot');
select tests.act_as('A', 'supervisor');
select throws_ok($$ update public.conversations set assigned_operator_id = tests.user_id('A', 'operador')
                     where id = tests.conversation_id('A', 'manual, unassigned chatbot') $$,
    '23514', null, 'an operador cannot be given a conversation of a chatbot it is not assigned to');
update public.conversations set status = 'waiting_human' where id = tests.conversation_id('A', 'manual, unassigned chatbot');
select results_eq($$ select reason::text, escalated_by from public.hitl_escalations where conversation_id = tests.conversation_id('A', 'manual, unassigned chatbot') $$,
    $$ values ('manual', tests.user_id('A', 'supervisor')) $$,
    'a manual escalation is logged with the user who made it');

-- The HITL log cannot be forged (finding H-2; schema/1050_hitl_escalations.sql) -----------
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

-- ... nor from a trigger of its own, where the change runs nested (pg_trigger_depth() > 1):
-- a table and trigger owned by the member's role (created here by the superuser, as a
-- member cannot count on TEMPORARY; a temp table of its own works the same way).
select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'escalated from a trigger'), tests.chatbot_id('A', 'unassigned'), 'u21', 'web');
select tests.act_as_superuser();
create table tests.member_trigger_probe (conversation_id uuid not null);
create function tests.member_trigger_probe_escalate() returns trigger language plpgsql as $f$
begin
  update public.conversations set status = 'waiting_human' where id = new.conversation_id;
  return new;
end $f$;
create trigger member_trigger_probe_escalate after insert on tests.member_trigger_probe
  for each row execute function tests.member_trigger_probe_escalate();
alter table tests.member_trigger_probe owner to authenticated;
alter function tests.member_trigger_probe_escalate() owner to authenticated;
select tests.act_as('A', 'supervisor');
select set_config('neurant.hitl_reason', 'keyword', true);
select set_config('neurant.hitl_detail', 'keyword "lawyer" in end-user message', true);
insert into tests.member_trigger_probe values (tests.conversation_id('A', 'escalated from a trigger'));
select tests.act_as_superuser();
select results_eq(
  $$ select reason::text, detail, escalated_by from public.hitl_escalations
      where conversation_id = tests.conversation_id('A', 'escalated from a trigger') $$,
  $$ values ('manual', '', tests.user_id('A', 'supervisor')) $$,
  'a member cannot forge the reason of an escalation from a trigger of its own (nested, pg_trigger_depth() > 1)');
select is((select status::text from public.conversations where id = tests.conversation_id('A', 'escalated from a trigger')), 'waiting_human',
  'a member''s nested status change still hands the conversation over (only the log is not forgeable)');

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

-- Cross-company references (service_role bypasses RLS: only the keys stop it) ----------------
select is(tests.attempt_as('service_role', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
  values (tests.company_id('A'), tests.chatbot_id('B', 'assigned'), 'x', 'web') $$),
  '23503: insert or update on table "conversations" violates foreign key constraint "conversations_chatbot_fkey"',
  'a conversation cannot reference another company''s chatbot, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel, assigned_operator_id)
  values (tests.company_id('A'), tests.chatbot_id('A', 'assigned'), 'x', 'web', tests.user_id('B', 'administrador')) $$),
  '23503: insert or update on table "conversations" violates foreign key constraint "conversations_assigned_operator_fkey"',
  'a conversation cannot be assigned to another company''s member, even for service_role');
select is(tests.attempt_as('service_role', $$ update public.conversations set assigned_operator_id = tests.user_id('B', 'supervisor')
   where company_id = tests.company_id('A') and id = tests.conversation_id('A', 'assigned-human') $$),
  '23503: insert or update on table "conversations" violates foreign key constraint "conversations_assigned_operator_fkey"',
  'a conversation cannot be re-assigned to another company''s member, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
  values (tests.company_id('A'), tests.conversation_id('B', 'assigned-human'), 'bot', 'x') $$),
  '23503: conversation <id> does not exist in company <id>',
  'a message cannot reference another company''s conversation, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
  values (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), tests.chatbot_id('B', 'assigned'), 'end_user', 'x') $$),
  '23503: insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"',
  'a message cannot carry another company''s chatbot_id, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.messages (company_id, conversation_id, sender_type, sender_id, content)
  values (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'operator', tests.user_id('B', 'operador'), 'x') $$),
  '23503: insert or update on table "messages" violates foreign key constraint "messages_sender_fkey"',
  'a message cannot name another company''s member as sender, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.message_reactions (company_id, message_id, conversation_id, chatbot_id, reaction)
  values (tests.company_id('A'), tests.message_id('B', 'assigned-human/bot'), tests.conversation_id('B', 'assigned-human'), tests.chatbot_id('B', 'assigned'), 'thumbs_up') $$),
  '23503: insert or update on table "message_reactions" violates foreign key constraint "message_reactions_message_fkey"',
  'a reaction cannot reference another company''s message, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.message_reactions (company_id, message_id, reaction)
  values (tests.company_id('A'), tests.message_id('B', 'assigned-human/bot'), 'thumbs_up') $$),
  '23502: null value in column "conversation_id" of relation "message_reactions" violates not-null constraint',
  'a reaction''s keys are never filled from another company''s message');
select is(tests.attempt_as('service_role', $$ insert into public.message_reactions (company_id, message_id, reaction, created_by)
  values (tests.company_id('A'), tests.message_id('A', 'assigned-human/bot'), 'thumbs_up', tests.user_id('B', 'supervisor')) $$),
  '23503: insert or update on table "message_reactions" violates foreign key constraint "message_reactions_created_by_fkey"',
  'a reaction cannot name another company''s member as author, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason)
  values (tests.company_id('A'), tests.conversation_id('B', 'assigned-human'), tests.chatbot_id('B', 'assigned'), 'manual') $$),
  '23503: insert or update on table "hitl_escalations" violates foreign key constraint "hitl_escalations_conversation_fkey"',
  'an escalation cannot reference another company''s conversation, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason, escalated_by)
  values (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), tests.chatbot_id('A', 'assigned'), 'manual', tests.user_id('B', 'supervisor')) $$),
  '23503: insert or update on table "hitl_escalations" violates foreign key constraint "hitl_escalations_escalated_by_fkey"',
  'an escalation cannot name another company''s member, even for service_role');

-- Probing another company's conversations ------------------------------------------------------
-- Triggers that look rows up (finding H-1; schema/0060_tenant_guard.sql) -----------------
select is(tests.same_either_way('administrador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('B'), $1, 'probe', 'telegram') $$, array[tests.chatbot_id('B', 'assigned')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed in another company does not reveal that company''s chatbot or its channels');
select is(tests.same_either_way('administrador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('B'), $1, 'probe', 'web') $$, array[tests.chatbot_id('B', 'spare')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed in another company does not reveal whether that company''s chatbot is active');
select is(tests.same_either_way('supervisor', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel, assigned_operator_id)
    values (tests.company_id('B'), tests.chatbot_id('B', 'unassigned'), 'probe', 'web', $1) $$,
    array[tests.user_id('B', 'operador')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed in another company does not reveal that company''s members or their assignments');
select is(tests.same_either_way('no_company', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
    values (tests.company_id('B'), $1, 'operator', 'probe') $$, array[tests.conversation_id('B', 'assigned-closed')]),
  'same: 42501: new row violates row-level security policy for table "messages"',
  'an identity without a company cannot learn whether a conversation exists or is closed');
select is(tests.same_either_way('no_company', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('B'), $1, 'probe', 'telegram') $$, array[tests.chatbot_id('B', 'assigned')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'an identity without a company cannot learn anything about a chatbot');

-- Foreign keys inside the caller's company -----------------------------------------
select is(tests.same_either_way('administrador', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
    values (tests.company_id('A'), $1, 'operator', 'probe') $$, array[tests.conversation_id('B', 'assigned-human')]),
  'same: 23503: conversation <id> does not exist in company <id>',
  'a message pointing at another company''s conversation fails exactly like one pointing at no conversation');
select is(tests.same_either_way('administrador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('A'), $1, 'probe', 'web') $$, array[tests.chatbot_id('B', 'assigned')]),
  'same: 23503: insert or update on table "conversations" violates foreign key constraint "conversations_chatbot_fkey"',
  'a conversation pointing at another company''s chatbot fails exactly like one pointing at no chatbot');
select is(tests.same_either_way('supervisor', $$ update public.conversations set assigned_operator_id = $1
    where id = tests.conversation_id('A', 'assigned-human') $$, array[tests.user_id('B', 'operador')]),
  'same: 23503: insert or update on table "conversations" violates foreign key constraint "conversations_assigned_operator_fkey"',
  'assigning a conversation to another company''s member fails exactly like assigning it to nobody known');
select is(tests.same_either_way('administrador', $$ insert into public.message_reactions (company_id, message_id, reaction)
    values (tests.company_id('A'), $1, 'thumbs_up') $$, array[tests.message_id('B', 'assigned-human/bot')]),
  'same: 23502: null value in column "conversation_id" of relation "message_reactions" violates not-null constraint',
  'reacting to another company''s message fails exactly like reacting to no message');

-- rule: user-deletion-keeps-history (docs/rules.md)
-- User deletion keeps the history -------------------------------------------------------------
select tests.act_as_superuser();
select tests.remove_members(array[tests.user_id('A', 'operador')]);
select results_eq($$ select count(*)::int, count(sender_id)::int from public.messages
                     where company_id = tests.company_id('A') and content = 'Refund issued.' $$,
    $$ values (1, 0) $$,
    'deleting a user keeps the messages it wrote, with the sender reference cleared');

select * from finish();
rollback;
