-- An operador reads only the chatbots assigned to it and what hangs off them:
-- conversations, messages, HITL escalations, knowledge queries, analytics; and
-- cannot write into or change the conversations of the other chatbots, not even by
-- naming an assigned chatbot_id. Supervisors and above read the whole company
-- (1000_chatbots.sql, 1010_conversations.sql).
begin;
select plan(13);

select tests.act_as('A', 'operador');
select results_eq($$ select id from public.chatbots $$,
    $$ values (tests.chatbot_id('A', 'assigned')) $$,
    'an operador reads only the chatbots assigned to it');
select is(public.get_assigned_chatbot_ids(), array[tests.chatbot_id('A', 'assigned')],
    'get_assigned_chatbot_ids returns the caller''s assigned chatbots');
select tests.act_as('A', 'owner');
select is(public.get_assigned_chatbot_ids(), '{}'::uuid[],
    'get_assigned_chatbot_ids is empty for a user without assignments');

select tests.act_as_superuser();
create temp table t_assigned as
select count(*) as conversations from public.conversations where chatbot_id = tests.chatbot_id('A', 'assigned');
grant select on t_assigned to authenticated;

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

select * from finish();
rollback;
