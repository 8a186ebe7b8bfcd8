-- An operador reads only the chatbots assigned to it and what hangs off them:
-- conversations, messages, HITL escalations, knowledge queries, analytics; and
-- cannot write into or change the conversations of the other chatbots, not even by
-- naming an assigned chatbot_id. Supervisors and above read the whole company
-- (1000_chatbots.sql, 1010_conversations.sql).
begin;
select plan(32);

select tests.act_as('A', 'operador');
select results_eq($$ select id from public.chatbots $$,
    $$ values (tests.chatbot_id('A', 'assigned')) $$,
    'an operador reads only the chatbots assigned to it');
select is(private.get_assigned_chatbot_ids(), array[tests.chatbot_id('A', 'assigned')],
    'get_assigned_chatbot_ids returns the caller''s assigned chatbots');
select tests.act_as('A', 'owner');
select is(private.get_assigned_chatbot_ids(), '{}'::uuid[],
    'get_assigned_chatbot_ids is empty for a user without assignments');

select tests.act_as_superuser();
create temp table t_assigned as
select count(*) as conversations from public.conversations where chatbot_id = tests.chatbot_id('A', 'assigned');
grant select on t_assigned to authenticated;

-- rule: operador-scope (docs/rules.md)
-- Visibility -------------------------------------------------------------------------------
select tests.act_as('A', 'operador');
select is((select count(*)::int from public.conversations where chatbot_id = tests.chatbot_id('A', 'unassigned')), 0,
    'an operador cannot read conversations of unassigned chatbots');
select ok((select count(*) from public.conversations where chatbot_id = tests.chatbot_id('A', 'assigned')) = (select conversations from t_assigned),
    'an operador reads the conversations of its assigned chatbots');
select is((select count(*)::int from public.messages where chatbot_id <> tests.chatbot_id('A', 'assigned')), 0,
    'an operador cannot read messages of unassigned chatbots');
select is((select count(*)::int from public.hitl_escalations where chatbot_id <> tests.chatbot_id('A', 'assigned')), 0,
    'an operador cannot read HITL escalations of unassigned chatbots');

-- Writing ----------------------------------------------------------------------------------
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'unassigned-human'), 'operator', 'Can I help?') $$,
    '42501', null, 'an operador cannot write in conversations of unassigned chatbots');
select is(tests.affected_rows($$ update public.conversations set status = 'closed' where id = tests.conversation_id('A', 'unassigned-human') $$),
    0::bigint, 'an operador cannot change conversations of unassigned chatbots');
select results_eq($$ select chatbot_id from public.knowledge_queries $$,
    $$ values (tests.chatbot_id('A', 'assigned')) $$,
    'an operador reads knowledge queries of assigned chatbots only');
select results_eq($$ select chatbot_id from public.analytics_daily $$,
    $$ values (tests.chatbot_id('A', 'assigned')) $$,
    'an operador reads analytics of assigned chatbots only');

-- Not by naming an assigned chatbot_id either (the keys stop it) ----------------------
select is(tests.attempt_as('operador', $$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
  values (tests.company_id('A'), tests.conversation_id('A', 'unassigned-human'), tests.chatbot_id('A', 'assigned'), 'operator', 'x') $$),
  '23503: insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"',
  'an operador cannot write into an unassigned chatbot''s conversation by naming an assigned chatbot_id');
select is(tests.attempt_as('operador', $$ insert into public.message_reactions (company_id, message_id, conversation_id, chatbot_id, reaction)
  values (tests.company_id('A'), tests.message_id('A', 'unassigned-human/bot'), tests.conversation_id('A', 'assigned-human'),
          tests.chatbot_id('A', 'assigned'), 'thumbs_up') $$),
  '23503: insert or update on table "message_reactions" violates foreign key constraint "message_reactions_message_fkey"',
  'an operador cannot react to an unassigned chatbot''s message by naming an assigned chatbot_id');

-- Errors reveal nothing about what the operador cannot see -----------------------------
-- An unassigned chatbot's conversation that is closed, in human mode or in bot mode fails
-- exactly like one that exists nowhere (or in another company): the triggers check
-- visibility against the real row before they report a status, and deny as RLS would.
select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'unassigned-bot mode'), tests.chatbot_id('A', 'unassigned'), 'u30', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'unassigned-closed, with messages'), tests.chatbot_id('A', 'unassigned'), 'u31', 'web');
insert into public.messages (company_id, id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.new_id('message', 'A', 'unassigned-bot mode/bot'), tests.conversation_id('A', 'unassigned-bot mode'), 'bot', 'Hi!'),
    (tests.company_id('A'), tests.new_id('message', 'A', 'unassigned-closed, with messages/bot'), tests.conversation_id('A', 'unassigned-closed, with messages'), 'bot', 'Bye!');
update public.conversations set status = 'closed' where id = tests.conversation_id('A', 'unassigned-closed, with messages');
select tests.act_as_superuser();

select is(tests.same_either_way('operador', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
    values (tests.company_id('A'), $1, 'operator', 'probe') $$, array[tests.conversation_id('A', 'unassigned-closed')]),
  'same: 42501: new row violates row-level security policy for table "messages"',
  'an operador writing into an unassigned chatbot''s closed conversation fails like writing into no conversation');
select is(tests.same_either_way('operador', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
    values (tests.company_id('A'), $1, 'operator', 'probe') $$, array[tests.conversation_id('A', 'unassigned-human')]),
  'same: 42501: new row violates row-level security policy for table "messages"',
  'an operador writing into an unassigned chatbot''s conversation in human mode fails like writing into no conversation');
select is(tests.same_either_way('operador', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
    values (tests.company_id('A'), $1, 'operator', 'probe') $$, array[tests.conversation_id('A', 'unassigned-bot mode')]),
  'same: 42501: new row violates row-level security policy for table "messages"',
  'an operador writing into an unassigned chatbot''s conversation in bot mode fails like writing into no conversation');
select is(tests.same_either_way('operador', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
    values (tests.company_id('A'), $1, 'operator', 'probe') $$, array[tests.conversation_id('B', 'assigned-human')]),
  'same: 42501: new row violates row-level security policy for table "messages"',
  'an operador writing into another company''s conversation fails like writing into no conversation');

select is(tests.same_either_way('operador', $$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
    values (tests.company_id('A'), $1, tests.chatbot_id('A', 'assigned'), 'operator', 'probe') $$, array[tests.conversation_id('A', 'unassigned-closed')]),
  'same: 23503: insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"',
  'naming an assigned chatbot_id does not tell an operador that an unassigned chatbot''s conversation is closed');
select is(tests.same_either_way('operador', $$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
    values (tests.company_id('A'), $1, tests.chatbot_id('A', 'assigned'), 'operator', 'probe') $$, array[tests.conversation_id('A', 'unassigned-human')]),
  'same: 23503: insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"',
  'naming an assigned chatbot_id does not tell an operador that an unassigned chatbot''s conversation is in human mode');
select is(tests.same_either_way('operador', $$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
    values (tests.company_id('A'), $1, tests.chatbot_id('A', 'assigned'), 'operator', 'probe') $$, array[tests.conversation_id('A', 'unassigned-bot mode')]),
  'same: 23503: insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"',
  'naming an assigned chatbot_id does not tell an operador that an unassigned chatbot''s conversation is in bot mode');
select is(tests.same_either_way('operador', $$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
    values (tests.company_id('A'), $1, tests.chatbot_id('A', 'assigned'), 'operator', 'probe') $$, array[tests.conversation_id('B', 'assigned-human')]),
  'same: 23503: insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"',
  'naming an assigned chatbot_id does not tell an operador that another company''s conversation exists');

select is(tests.same_either_way('operador', $$ insert into public.message_reactions (company_id, message_id, chatbot_id, reaction)
    values (tests.company_id('A'), $1, tests.chatbot_id('A', 'assigned'), 'thumbs_up') $$, array[tests.message_id('A', 'unassigned-closed, with messages/bot')]),
  'same: 23502: null value in column "conversation_id" of relation "message_reactions" violates not-null constraint',
  'reacting to a message of an unassigned chatbot''s closed conversation fails like reacting to no message');
select is(tests.same_either_way('operador', $$ insert into public.message_reactions (company_id, message_id, chatbot_id, reaction)
    values (tests.company_id('A'), $1, tests.chatbot_id('A', 'assigned'), 'thumbs_up') $$, array[tests.message_id('A', 'unassigned-human/bot')]),
  'same: 23502: null value in column "conversation_id" of relation "message_reactions" violates not-null constraint',
  'reacting to a message of an unassigned chatbot''s conversation in human mode fails like reacting to no message');
select is(tests.same_either_way('operador', $$ insert into public.message_reactions (company_id, message_id, chatbot_id, reaction)
    values (tests.company_id('A'), $1, tests.chatbot_id('A', 'assigned'), 'thumbs_up') $$, array[tests.message_id('A', 'unassigned-bot mode/bot')]),
  'same: 23502: null value in column "conversation_id" of relation "message_reactions" violates not-null constraint',
  'reacting to a message of an unassigned chatbot''s conversation in bot mode fails like reacting to no message');
select is(tests.same_either_way('operador', $$ insert into public.message_reactions (company_id, message_id, chatbot_id, reaction)
    values (tests.company_id('A'), $1, tests.chatbot_id('A', 'assigned'), 'thumbs_up') $$, array[tests.message_id('B', 'assigned-human/bot')]),
  'same: 23502: null value in column "conversation_id" of relation "message_reactions" violates not-null constraint',
  'reacting to another company''s message fails like reacting to no message, for an operador too');

select is(tests.same_either_way('operador', $$ update public.conversations set status = 'active' where id = $1 returning status::text $$,
    array[tests.conversation_id('A', 'unassigned-closed')]),
  'same: ok: <null>',
  'changing the status of an unassigned chatbot''s closed conversation does nothing, like changing no conversation');
select is(tests.same_either_way('operador', $$ update public.conversations set status = 'waiting_human' where id = $1 returning status::text $$,
    array[tests.conversation_id('A', 'unassigned-human')]),
  'same: ok: <null>',
  'changing the status of an unassigned chatbot''s conversation in human mode does nothing, like changing no conversation');
select is(tests.same_either_way('operador', $$ update public.conversations set status = 'human' where id = $1 returning status::text $$,
    array[tests.conversation_id('A', 'unassigned-bot mode')]),
  'same: ok: <null>',
  'changing the status of an unassigned chatbot''s conversation in bot mode does nothing, like changing no conversation');

-- ... nor about unassigned chatbots or assignments (an operador never opens conversations)
select is(tests.same_either_way('operador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('A'), $1, 'probe', 'telegram') $$, array[tests.chatbot_id('A', 'unassigned')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed by an operador does not reveal an unassigned chatbot''s channels');
select is(tests.same_either_way('operador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('A'), $1, 'probe', 'web') $$, array[tests.chatbot_id('A', 'spare')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed by an operador does not reveal whether an unassigned chatbot is active');
select is(tests.same_either_way('operador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel, assigned_operator_id)
    values (tests.company_id('A'), $1, 'probe', 'web', tests.user_id('A', 'operador')) $$, array[tests.chatbot_id('A', 'unassigned')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed by an operador does not reveal the assignments of an unassigned chatbot');
select is(tests.same_either_way('operador', $$ update public.conversations set assigned_operator_id = tests.user_id('A', 'operador')
    where id = $1 returning status::text $$, array[tests.conversation_id('A', 'unassigned-human')]),
  'same: ok: <null>',
  'an operador taking over an unassigned chatbot''s conversation does nothing, like taking over no conversation');

select * from finish();
rollback;
