-- End-user erasure (GDPR Art. 17, migrations 4200-4210): public.erase_end_user redacts one
-- end user's conversations, messages, reactions and escalations, live and archived, keeps
-- the analytics totals, leaves other end users and other tenants alone, defers what a legal
-- hold covers until the hold is released, records every request in private.erasure_ledger
-- without personal data, and only service_role may call it. Cold files: tests/test_erasure.py.
begin;
select plan(22);

-- rule: end-user-erasure (docs/rules.md)
-- The end user '+34600000001' of company A: the live conversation of the fixtures, plus an
-- archived conversation and a second live one put under a legal hold here. Company B has an
-- end user with the same id.
insert into archive.conversations_archived (company_id, id, chatbot_id, end_user_id, channel, status, is_hitl_active,
    bot_turns_without_resolution, closed_at, created_at, updated_at, archived_at)
values (tests.company_id('A'), tests.new_id('conversation', 'A', 'erasure archived'), tests.chatbot_id('A', 'assigned'),
        '+34600000001', 'whatsapp', 'closed', false, 0, now(), now(), now(), now());
insert into archive.messages_archived (company_id, id, conversation_id, chatbot_id, sender_type, content, created_at, archived_at)
values (tests.company_id('A'), tests.new_id('message', 'A', 'erasure archived'), tests.id('conversation', 'A', 'erasure archived'),
        tests.chatbot_id('A', 'assigned'), 'end_user', 'My address is Calle Mayor 1', now(), now());
insert into archive.message_reactions_archived (company_id, id, message_id, conversation_id, chatbot_id, reaction, comment, created_at, archived_at)
values (tests.company_id('A'), tests.new_id('reaction', 'A', 'erasure archived'), tests.id('message', 'A', 'erasure archived'),
        tests.id('conversation', 'A', 'erasure archived'), tests.chatbot_id('A', 'assigned'), 'thumbs_down', 'call me on +34600000001', now(), now());
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel)
values (tests.company_id('A'), tests.new_id('conversation', 'A', 'erasure held'), tests.chatbot_id('A', 'assigned'), '+34600000001', 'whatsapp');
insert into public.messages (company_id, id, conversation_id, sender_type, content)
values (tests.company_id('A'), tests.new_id('message', 'A', 'erasure held'), tests.id('conversation', 'A', 'erasure held'),
        'end_user', 'Held words');
insert into public.legal_holds (company_id, id, conversation_id, reason, set_by)
values (tests.company_id('A'), tests.new_id('legal_hold', 'A', 'erasure held'), tests.id('conversation', 'A', 'erasure held'),
        'Litigation 2026-40', 'legal@a.example');

-- analytics before: today's roll-up of company A
call public.refresh_analytics_daily(current_date);
create temp table analytics_before as
  select chatbot_id, day, conversations_count, new_conversations_count, messages_count, end_user_messages_count,
         bot_messages_count, operator_messages_count, hitl_escalations, positive_reactions, negative_reactions,
         knowledge_queries_count
    from public.analytics_daily where company_id = tests.company_id('A');
create temp table b_before as
  select tests.company_fingerprint(tests.company_id('B')) as fingerprint;
create temp table other_before as
  select m.id, m.content from public.messages m
    join public.conversations c on c.company_id = m.company_id and c.id = m.conversation_id
   where c.company_id = tests.company_id('A') and c.end_user_id <> '+34600000001';

-- who may call it
select is(tests.attempt_as('owner', $$select public.erase_end_user(tests.company_id('A'), '+34600000001', 'GDPR ticket 1')$$),
    '42501: permission denied for function erase_end_user', 'a member (even the owner) cannot call erase_end_user');
select is(tests.attempt_as('anon', $$select public.erase_end_user(tests.company_id('A'), '+34600000001', 'GDPR ticket 1')$$),
    '42501: permission denied for function erase_end_user', 'anon cannot call erase_end_user');
select is(tests.attempt_as('service_role', $$select public.erase_end_user(tests.company_id('A'), '+34600000001', 'x')$$),
    '22023: erase_end_user needs a reason of 3-500 characters', 'a request names its reason');

-- the request, as service_role
select tests.act_as_service();
create temp table receipt as
  select public.erase_end_user(tests.company_id('A'), '+34600000001', 'GDPR ticket 1') as r;
select tests.act_as_superuser();

select is((select r ->> 'status' from receipt), 'deferred', 'a request touching a held conversation is recorded as deferred');
select is((select (r ->> 'conversations')::int from receipt), 3, 'the receipt counts the end user''s live and archived conversations');
select is((select (r ->> 'deferred_conversations')::int from receipt), 1, 'the held conversation is deferred');
select is((select (r -> 'erased' ->> 'public.messages')::int from receipt), 4, 'the receipt counts the redacted live messages');

-- live and archive redacted
select is((select count(*) from public.conversations where company_id = tests.company_id('A') and end_user_id = '+34600000001')::int, 1,
    'only the held conversation still carries the end user id (live)');
select is((select count(*) from archive.conversations_archived where company_id = tests.company_id('A') and end_user_id = '+34600000001')::int, 0,
    'no archived conversation carries the end user id');
select is((select array_agg(distinct content) from public.messages where company_id = tests.company_id('A') and conversation_id = tests.conversation_id('A', 'assigned-human')),
    array['[erased]'], 'every live message of the erased conversation is redacted');
select is((select content from archive.messages_archived where company_id = tests.company_id('A') and id = tests.id('message', 'A', 'erasure archived')),
    '[erased]', 'the archived message is redacted');
select is((select comment from archive.message_reactions_archived where company_id = tests.company_id('A') and id = tests.id('reaction', 'A', 'erasure archived')),
    '', 'the archived reaction comment is redacted');
select is((select content from public.messages where company_id = tests.company_id('A') and id = tests.id('message', 'A', 'erasure held')),
    'Held words', 'legal holds win: the held conversation''s message is untouched');

-- nothing else touched
select is((select tests.company_fingerprint(tests.company_id('B'))), (select fingerprint from b_before),
    'company B (with an end user of the same id) is untouched');
select set_eq($$select m.id, m.content from public.messages m where m.company_id = tests.company_id('A') and m.id in (select id from other_before)$$,
    $$select id, content from other_before$$, 'the other end users'' messages of company A are untouched');

-- analytics keep their totals
call public.refresh_analytics_daily(current_date);
select set_eq($$select chatbot_id, day, conversations_count, new_conversations_count, messages_count, end_user_messages_count,
         bot_messages_count, operator_messages_count, hitl_escalations, positive_reactions, negative_reactions,
         knowledge_queries_count from public.analytics_daily where company_id = tests.company_id('A')$$,
    $$select * from analytics_before$$, 'the daily analytics recomputed after the erasure keep their totals');

-- the ledger: the request, no personal data
select is((select count(*) from private.erasure_ledger l where l.company_id = tests.company_id('A')
             and l.subject_ref = encode(sha256(convert_to(tests.company_id('A')::text || ':+34600000001', 'UTF8')), 'hex')
             and l.status = 'deferred' and l.reason = 'GDPR ticket 1')::int, 1,
    'the ledger records the request under the sha256 reference of company and end user');
select is((select count(*) from private.erasure_ledger l
            where strpos(row_to_json(l)::text, '34600000001') > 0 or strpos(row_to_json(l)::text, 'Calle Mayor') > 0)::int, 0,
    'the ledger holds neither the end user id nor any of their data');
select is(tests.attempt_as('owner', 'select * from private.erasure_ledger'),
    '42501: permission denied for table erasure_ledger', 'members cannot read the ledger');

-- the hold is released: the deferred part runs
update public.legal_holds set released_at = now(), released_by = 'legal@a.example'
 where company_id = tests.company_id('A') and id = tests.id('legal_hold', 'A', 'erasure held');
select is((select content from public.messages where company_id = tests.company_id('A') and id = tests.id('message', 'A', 'erasure held')),
    '[erased]', 'released, the held conversation''s message is redacted');
select is((select count(*) from public.conversations where company_id = tests.company_id('A') and end_user_id = '+34600000001')::int, 0,
    'released, no conversation carries the end user id');
select is((select status || ' ' || cardinality(deferred_conversation_ids) || ' ' || (completed_at is not null)
             from private.erasure_ledger where company_id = tests.company_id('A') and reason = 'GDPR ticket 1'),
    'done 0 true', 'the ledger request is done once its hold is released');

select * from finish();
rollback;
