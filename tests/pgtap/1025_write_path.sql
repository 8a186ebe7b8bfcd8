-- The message write path as restructured for speed (issue 11) keeps its rules: phrase
-- lists are normalised when the chatbot is written and a changed list applies to the
-- next message; only end-user messages escalate on phrases; an escalation made before a
-- row the table refuses goes with it; the legal-hold trigger of
-- conversations still covers every identity column while the per-message bookkeeping
-- passes; usage stays exact on the update-first path; the tenant guard still refuses
-- another company's rows to members.
begin;
select plan(34);

select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'new keyword'), tests.chatbot_id('A', 'unassigned'), 'w1', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'old keyword'), tests.chatbot_id('A', 'unassigned'), 'w2', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'bot keyword'), tests.chatbot_id('A', 'unassigned'), 'w3', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'held'), tests.chatbot_id('A', 'unassigned'), 'w4', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'redelivered'), tests.chatbot_id('A', 'unassigned'), 'w5', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'redelivered bot'), tests.chatbot_id('A', 'unassigned'), 'w6', 'web');

-- Normalised phrase lists --------------------------------------------------------------------
update public.chatbots set hitl_keywords = '{"Escalate-NOW!", "cancel  my order"}', hitl_human_request_phrases = '{}'
 where company_id = tests.company_id('A') and id = tests.chatbot_id('A', 'unassigned');
select results_eq($$ select hitl_keywords_normalized, hitl_human_request_phrases_normalized from public.chatbots
                      where id = tests.chatbot_id('A', 'unassigned') $$,
    $$ values ('{"escalate now", "cancel my order"}'::text[], '{}'::text[]) $$,
    'the phrase lists are stored normalised when the chatbot configuration is written');
select throws_ok($$ update public.chatbots set hitl_keywords_normalized = '{forged}'
                     where id = tests.chatbot_id('A', 'unassigned') $$,
    '428C9', null, 'the normalised lists cannot be written directly');

insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'new keyword'), 'end_user', 'Please escalate now.');
select results_eq($$ select c.status::text, e.reason::text, e.detail from public.conversations c
                      join public.hitl_escalations e on e.company_id = c.company_id and e.conversation_id = c.id
                     where c.id = tests.conversation_id('A', 'new keyword') $$,
    $$ values ('waiting_human', 'keyword', 'keyword "Escalate-NOW!" in end-user message') $$,
    'a keyword changed in the chatbot configuration is picked up by the next message (the detail names it as configured)');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'old keyword'), 'end_user', 'I want a refund, and a lawyer. Talk to a human!');
select is((select status::text from public.conversations where id = tests.conversation_id('A', 'old keyword')), 'active',
    'keywords and phrases removed from the configuration no longer escalate');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'bot keyword'), 'bot', 'Shall I escalate now, or cancel my order?');
select results_eq($$ select c.status::text, (select count(*)::int from public.hitl_escalations e where e.company_id = c.company_id and e.conversation_id = c.id)
                      from public.conversations c where c.id = tests.conversation_id('A', 'bot keyword') $$,
    $$ values ('active', 0) $$,
    'a bot message containing a keyword does not escalate (only end-user messages are matched)');
select is(private.match_phrase(private.normalize_phrase('The ESCALATION now'), '{Escalate-NOW!}', '{"escalate now"}'), null,
    'phrases still match whole words only');
-- A statement's end-user texts are first matched joined (issue 21): a phrase that only
-- spans two messages of the statement matches neither of them
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'spanning'), tests.chatbot_id('A', 'unassigned'), 'w7', 'web');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'spanning'), 'end_user', 'Please cancel my'),
    (tests.company_id('A'), tests.conversation_id('A', 'spanning'), 'end_user', 'order of shoes, it is late');
select results_eq($$ select c.status::text, (select count(*)::int from public.hitl_escalations e where e.company_id = c.company_id and e.conversation_id = c.id)
                      from public.conversations c where c.id = tests.conversation_id('A', 'spanning') $$,
    $$ values ('active', 0) $$,
    'a phrase split over two end-user messages of one statement escalates nothing');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'spanning'), 'end_user', 'Still waiting.'),
    (tests.company_id('A'), tests.conversation_id('A', 'spanning'), 'end_user', 'Please CANCEL my order!');
select results_eq($$ select c.status::text, e.reason::text, e.detail from public.conversations c
                      join public.hitl_escalations e on e.company_id = c.company_id and e.conversation_id = c.id
                     where c.id = tests.conversation_id('A', 'spanning') $$,
    $$ values ('waiting_human', 'keyword', 'keyword "cancel  my order" in end-user message') $$,
    'a keyword in a later end-user message of one statement escalates the conversation');

-- The whole path runs before the row is stored: a message the table then refuses (here its
-- length check) takes the escalation it caused back with it
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                      (tests.company_id('A'), tests.conversation_id('A', 'old keyword'), 'end_user',
                       'Escalate now! ' || repeat('x', 32000)) $$,
    '23514', null, 'an over-long end-user message with a keyword is refused by the table');
select results_eq($$ select c.status::text, (select count(*)::int from public.hitl_escalations e where e.company_id = c.company_id and e.conversation_id = c.id),
                            (select count(*)::int from public.messages m where m.company_id = c.company_id and m.conversation_id = c.id)
                       from public.conversations c where c.id = tests.conversation_id('A', 'old keyword') $$,
    $$ values ('active', 0, 1) $$,
    'a message the table refuses leaves no escalation behind (the conversation stays in bot mode, one message)');

-- Legal holds on conversations -----------------------------------------------------------------
select tests.act_as_superuser();
select is(
    array(select a.attname::text from pg_attribute a
           where a.attrelid = 'public.conversations'::regclass and a.attnum > 0 and not a.attisdropped
          except
          select a.attname::text from pg_trigger t join pg_attribute a on a.attrelid = t.tgrelid and a.attnum = any (t.tgattr)
           where t.tgrelid = 'public.conversations'::regclass and t.tgname = 'conversations_legal_hold'
          except
          select f from pg_trigger t,
                 unnest((string_to_array(encode(t.tgargs, 'escape'), '\000'))[2:]) as f
           where t.tgrelid = 'public.conversations'::regclass and t.tgname = 'conversations_legal_hold'
          order by 1),
    '{}'::text[],
    'conversations_legal_hold fires for an update of every column that is not free under a hold (a new column must be listed)');
insert into public.legal_holds (company_id, id, conversation_id, reason, set_by) values
    (tests.company_id('A'), tests.new_id('legal_hold', 'A', 'write path'), tests.conversation_id('A', 'held'),
     'Litigation 2026-40', 'legal@a.example');
select tests.act_as_service();
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   (tests.company_id('A'), tests.conversation_id('A', 'held'), 'end_user', 'Still there?') $$,
    'a held conversation still takes messages (its bookkeeping columns change)');
select isnt((select last_message_at from public.conversations where id = tests.conversation_id('A', 'held')), null,
    'the message updated the held conversation''s last_message_at');
-- a constant new id (Citus refuses a volatile function in an UPDATE of a distributed table)
select throws_ok($$ update public.conversations set id = '00000000-0000-0000-0000-000000000000' where id = tests.conversation_id('A', 'held') $$,
    '42501', null, 'a held conversation still cannot change its id');

-- Usage on the update-first path -----------------------------------------------------------------
select tests.act_as_superuser();
delete from public.company_message_usage
 where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date;
select tests.act_as_service();
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'old keyword'), 'end_user', 'First of the month');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'old keyword'), 'end_user', 'Second');
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'old keyword'), 'bot', 'Answer');
select results_eq($$ select sum(message_count)::int, sum(total_message_count)::int from public.company_message_usage
                      where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date $$,
    $$ values (1, 3) $$,
    'usage is exact from the first message of a month on: the row is created, then updated');

-- Tenant guard -----------------------------------------------------------------------------------
select tests.act_as('A', 'owner');
select throws_ok(format($$ insert into public.messages (company_id, conversation_id, sender_type, content)
                            values (%L, %L, 'operator', 'probe') $$, tests.company_id('B'), tests.conversation_id('A', 'held')),
    '42501', 'new row violates row-level security policy for table "messages"',
    'a member proposing a message of another company gets the RLS error from the tenant guard');

-- A statement is one step --------------------------------------------------------------------
-- The bookkeeping runs once per statement over its stored messages: every rule sees the
-- conversation as it was before the statement, and an escalation applies after it. (Where
-- the trigger is a row trigger - profile citus - each row is such a step of its own.)
select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'batch keyword'), tests.chatbot_id('A', 'assigned'), 'b1', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'batch turns'), tests.chatbot_id('A', 'assigned'), 'b2', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'batch one'), tests.chatbot_id('A', 'unassigned'), 'b3', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'batch two'), tests.chatbot_id('A', 'unassigned'), 'b4', 'web'),
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'batch closed'), tests.chatbot_id('A', 'unassigned'), 'b5', 'web');
update public.conversations set status = 'closed' where id = tests.conversation_id('A', 'batch closed');
select case when (select t.tgtype::int & 1 = 0 from pg_trigger t where t.tgrelid = 'public.messages'::regclass and t.tgname = 'messages_after_insert') then lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   (tests.company_id('A'), tests.conversation_id('A', 'batch keyword'), 'end_user', 'I want a refund'),
                   (tests.company_id('A'), tests.conversation_id('A', 'batch keyword'), 'bot', 'Let me check that for you.') $$,
    'an end-user message and the bot''s answer written in one statement are both stored, the keyword notwithstanding')
  else throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                     (tests.company_id('A'), tests.conversation_id('A', 'batch keyword'), 'end_user', 'I want a refund'),
                     (tests.company_id('A'), tests.conversation_id('A', 'batch keyword'), 'bot', 'Let me check that for you.') $$,
    'NA003', null, 'profile citus (a row trigger: each row a step): the end-user keyword escalates at once, so the bot''s answer in the same statement is refused and the statement with it') end;
select case when (select t.tgtype::int & 1 = 0 from pg_trigger t where t.tgrelid = 'public.messages'::regclass and t.tgname = 'messages_after_insert') then results_eq($$ select c.status::text, e.reason::text, e.detail,
                            (select count(*)::int from public.messages m where m.conversation_id = c.id)
                       from public.conversations c join public.hitl_escalations e on e.conversation_id = c.id
                      where c.id = tests.conversation_id('A', 'batch keyword') $$,
    $$ values ('waiting_human', 'keyword', 'keyword "refund" in end-user message', 2) $$,
    'the keyword of a batch escalates the conversation once, after the statement')
  else is((select status::text from public.conversations where id = tests.conversation_id('A', 'batch keyword')), 'active',
    'profile citus: the refused statement stored nothing and escalated nothing') end;
update public.conversations set status = 'waiting_human'
 where id = tests.conversation_id('A', 'batch keyword') and status = 'active';
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'batch keyword'), 'end_user', 'Hello?'),
                    (tests.company_id('A'), tests.conversation_id('A', 'batch keyword'), 'bot', 'Hi!') $$,
    'NA003', null, 'a batch with a bot message for a conversation a human has is refused whole (NA003)');
select case when (select t.tgtype::int & 1 = 0 from pg_trigger t where t.tgrelid = 'public.messages'::regclass and t.tgname = 'messages_after_insert') then lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content)
                   select tests.company_id('A'), tests.conversation_id('A', 'batch turns'), 'bot', 'Answer ' || g
                     from generate_series(1, 5) g $$,
    'five bot answers written in one statement are stored together')
  else throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content)
                     select tests.company_id('A'), tests.conversation_id('A', 'batch turns'), 'bot', 'Answer ' || g
                       from generate_series(1, 5) g $$,
    null::char(5), null, 'profile citus (a row trigger: each row a step): the third bot turn escalates, so a later answer of the statement is refused and the statement with it') end;
select case when (select t.tgtype::int & 1 = 0 from pg_trigger t where t.tgrelid = 'public.messages'::regclass and t.tgname = 'messages_after_insert') then results_eq($$ select c.status::text, c.bot_turns_without_resolution, e.reason::text, e.detail
                       from public.conversations c join public.hitl_escalations e on e.conversation_id = c.id
                      where c.id = tests.conversation_id('A', 'batch turns') $$,
    $$ values ('waiting_human', 0, 'bot_turns', '5 bot turns without resolution (limit 3)') $$,
    'bot answers of one statement count as turns together and escalate once at hitl_max_bot_turns')
  else is((select status::text || ' ' || bot_turns_without_resolution from public.conversations
             where id = tests.conversation_id('A', 'batch turns')), 'active 0',
    'profile citus: the refused statement counted no turn and escalated nothing') end;
insert into public.messages (company_id, conversation_id, sender_type, content, created_at) values
    (tests.company_id('A'), tests.conversation_id('A', 'batch one'), 'end_user', 'One', '2026-01-01 10:00+00'),
    (tests.company_id('A'), tests.conversation_id('A', 'batch two'), 'end_user', 'Two', '2026-01-01 11:00+00'),
    (tests.company_id('A'), tests.conversation_id('A', 'batch one'), 'bot', 'One more', '2026-01-01 12:00+00'),
    (tests.company_id('A'), tests.conversation_id('A', 'batch two'), 'bot', 'Two more', '2026-01-01 09:00+00');
select results_eq($$ select last_message_at, bot_turns_without_resolution from public.conversations
                      where id in (tests.conversation_id('A', 'batch one'), tests.conversation_id('A', 'batch two'))
                      order by end_user_id $$,
    $$ values ('2026-01-01 12:00+00'::timestamptz, 1), ('2026-01-01 11:00+00'::timestamptz, 1) $$,
    'a statement over several conversations keeps each one''s latest activity and turn counter');
-- One statement over two companies and three conversations, rows in no particular order:
-- each company counts its own messages (usage first, then its conversations, in id order),
-- each conversation its own activity and turns (schema/4900: one keyed update per conversation).
select tests.act_as_superuser();
create temp table pair_before as
  select (select coalesce(sum(total_message_count), 0) from public.company_message_usage where company_id = tests.company_id('A')) as a_total,
         (select coalesce(sum(message_count), 0) from public.company_message_usage where company_id = tests.company_id('A')) as a_billable,
         (select coalesce(sum(total_message_count), 0) from public.company_message_usage where company_id = tests.company_id('B')) as b_total,
         (select coalesce(sum(message_count), 0) from public.company_message_usage where company_id = tests.company_id('B')) as b_billable;
grant select on pair_before to service_role;
select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'pair one'), tests.chatbot_id('A', 'unassigned'), 'p1', 'web'),
    (tests.company_id('B'), tests.new_id('conversation', 'B', 'pair two'), tests.chatbot_id('B', 'assigned'), 'p2', 'web'),
    (tests.company_id('B'), tests.new_id('conversation', 'B', 'pair three'), tests.chatbot_id('B', 'assigned'), 'p3', 'web');
insert into public.messages (company_id, conversation_id, sender_type, content, created_at) values
    (tests.company_id('B'), tests.conversation_id('B', 'pair three'), 'bot', 'Three', '2026-02-01 10:00+00'),
    (tests.company_id('A'), tests.conversation_id('A', 'pair one'), 'end_user', 'One', '2026-02-01 09:00+00'),
    (tests.company_id('B'), tests.conversation_id('B', 'pair two'), 'end_user', 'Two', '2026-02-01 08:00+00'),
    (tests.company_id('B'), tests.conversation_id('B', 'pair two'), 'bot', 'Two more', '2026-02-01 11:00+00');
select results_eq($$ select (select sum(total_message_count) from public.company_message_usage where company_id = tests.company_id('A')),
                            (select sum(message_count) from public.company_message_usage where company_id = tests.company_id('A')),
                            (select sum(total_message_count) from public.company_message_usage where company_id = tests.company_id('B')),
                            (select sum(message_count) from public.company_message_usage where company_id = tests.company_id('B')) $$,
    $$ select a_total + 1, a_billable, b_total + 3, b_billable + 2 from pair_before $$,
    'a statement over two companies counts each company''s messages in its own usage');
select results_eq($$ select end_user_id, last_message_at, bot_turns_without_resolution from public.conversations
                      where id in (tests.conversation_id('A', 'pair one'), tests.conversation_id('B', 'pair two'),
                                   tests.conversation_id('B', 'pair three'))
                      order by end_user_id $$,
    $$ values ('p1', '2026-02-01 09:00+00'::timestamptz, 0), ('p2', '2026-02-01 11:00+00'::timestamptz, 1),
              ('p3', '2026-02-01 10:00+00'::timestamptz, 1) $$,
    'a statement over two companies keeps each conversation''s latest activity and turn counter');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'batch one'), 'end_user', 'Open'),
                    (tests.company_id('A'), tests.conversation_id('A', 'batch closed'), 'end_user', 'Closed') $$,
    '22023', null, 'a statement with a message for a closed conversation is refused (22023)');
select is((select count(*)::int from public.messages where conversation_id = tests.conversation_id('A', 'batch one')), 2,
    'nothing of a refused statement is stored, not even its messages for open conversations');

-- Redelivery ------------------------------------------------------------------------------------
-- rule: message-redelivery-idempotent (docs/rules.md)
-- Channels and queues deliver a message again (retries, at-least-once delivery); the backend
-- writes it with `on conflict do nothing`. Only rows actually stored count: a message that is
-- already there changes no usage, escalates nothing and moves no conversation.
select tests.act_as_service();
insert into public.messages (company_id, id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.new_id('message', 'A', 'escalating'), tests.conversation_id('A', 'redelivered'),
     'end_user', 'Please escalate now.');
insert into public.messages (company_id, id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.new_id('message', 'A', 'bot answer'), tests.conversation_id('A', 'redelivered bot'),
     'bot', 'An answer.');
-- staff hand the escalated conversation back to the bot
update public.conversations set status = 'active' where id = tests.conversation_id('A', 'redelivered');
select tests.act_as_superuser();
create temp table redelivery_before as
  select (select sum(total_message_count) from public.company_message_usage where company_id = tests.company_id('A')) as total,
         (select sum(message_count) from public.company_message_usage where company_id = tests.company_id('A')) as billable,
         (select count(*) from public.hitl_escalations where conversation_id = tests.conversation_id('A', 'redelivered')) as escalations,
         (select last_message_at from public.conversations where id = tests.conversation_id('A', 'redelivered')) as last_at,
         (select bot_turns_without_resolution from public.conversations where id = tests.conversation_id('A', 'redelivered bot')) as turns;
grant select on redelivery_before to service_role;
select tests.act_as_service();
select lives_ok($$ insert into public.messages (company_id, id, conversation_id, sender_type, content, created_at) values
                   (tests.company_id('A'), tests.message_id('A', 'escalating'), tests.conversation_id('A', 'redelivered'),
                    'end_user', 'Please escalate now.', now() + interval '1 hour')
                   on conflict do nothing $$,
    'a redelivered end-user message is accepted by on conflict do nothing');
select results_eq($$ select status::text, (select count(*) from public.hitl_escalations e
                                              where e.company_id = c.company_id and e.conversation_id = c.id),
                            last_message_at
                       from public.conversations c
                      where c.company_id = tests.company_id('A') and c.id = tests.conversation_id('A', 'redelivered') $$,
    $$ select 'active', escalations, last_at from redelivery_before $$,
    'a redelivered message that is not stored escalates nothing and leaves last_message_at where it was');
insert into public.messages (company_id, id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.message_id('A', 'bot answer'), tests.conversation_id('A', 'redelivered bot'), 'bot', 'An answer.')
on conflict (company_id, id) do nothing;
select is((select bot_turns_without_resolution from public.conversations where id = tests.conversation_id('A', 'redelivered bot')),
          (select turns from redelivery_before),
    'a redelivered bot message that is not stored does not count a bot turn');
select results_eq($$ select sum(total_message_count), sum(message_count) from public.company_message_usage
                      where company_id = tests.company_id('A') $$,
    $$ select total, billable from redelivery_before $$,
    'redelivered messages that are not stored count no usage (billable or total)');
-- a retried batch: one message already stored, one new
insert into public.messages (company_id, id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.message_id('A', 'bot answer'), tests.conversation_id('A', 'redelivered bot'), 'bot', 'An answer.'),
    (tests.company_id('A'), tests.new_id('message', 'A', 'second answer'), tests.conversation_id('A', 'redelivered bot'), 'bot', 'Another one.')
on conflict do nothing;
select results_eq($$ select sum(total_message_count), sum(message_count) from public.company_message_usage
                      where company_id = tests.company_id('A') $$,
    $$ select total + 1, billable + 1 from redelivery_before $$,
    'a retried batch counts only the messages it stores');
select is((select bot_turns_without_resolution from public.conversations where id = tests.conversation_id('A', 'redelivered bot')),
          (select turns + 1 from redelivery_before),
    'a retried batch counts the bot turns of the messages it stores only');
-- and again: nothing
select lives_ok($$ insert into public.messages (company_id, id, conversation_id, sender_type, content) values
                   (tests.company_id('A'), tests.message_id('A', 'second answer'), tests.conversation_id('A', 'redelivered bot'),
                    'bot', 'Another one.')
                   on conflict (company_id, id) do nothing $$,
    'redelivering the batch''s new message again is accepted');
select results_eq($$ select sum(total_message_count), sum(message_count) from public.company_message_usage
                      where company_id = tests.company_id('A') $$,
    $$ select total + 1, billable + 1 from redelivery_before $$,
    'a second redelivery counts nothing either');

select * from finish();
rollback;
