-- Monthly message usage and limit: every message is counted per company per month in
-- the same transaction; billable messages beyond the limit are refused (NA001), end-user
-- messages are still accepted, other companies are unaffected; members neither read
-- nor reset the usage, nor raise the company's allowance.
begin;
select plan(14);

select tests.act_as_service();
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values
    (tests.company_id('A'), tests.new_id('conversation', 'A', 'usage'), tests.chatbot_id('A', 'unassigned'), 'u13', 'web'),
    (tests.company_id('B'), tests.new_id('conversation', 'B', 'usage'), tests.chatbot_id('B', 'assigned'), 'u13', 'whatsapp');

-- Visibility -------------------------------------------------------------------------------
select tests.act_as('A', 'operador');
select is((select count(*)::int from public.company_message_usage), 0,
    'an operador cannot read the company''s message usage');

-- rule: monthly-message-limit (docs/rules.md)
-- Monthly message usage ----------------------------------------------------------------------
select tests.act_as_superuser();
create temp table usage_before as
select coalesce(sum(message_count), 0)::bigint as message_count, coalesce(sum(total_message_count), 0)::bigint as total_message_count
  from public.company_message_usage
 where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date;
grant select on usage_before to authenticated;
select tests.act_as_service();
insert into public.messages (company_id, conversation_id, sender_type, content) values
    (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Counted answer');
select tests.act_as('A', 'owner');
select results_eq($$ select sum(u.message_count)::bigint - min(b.message_count), sum(u.total_message_count)::bigint - min(b.total_message_count)
                      from public.company_message_usage u, usage_before b
                     where u.month = date_trunc('month', now() at time zone 'UTC')::date $$,
    $$ values (1::bigint, 1::bigint) $$,
    'each message is counted in the company''s monthly usage in the same transaction (bot messages are billable)');
-- A statement is counted whole (the bookkeeping runs once per statement): a batch whose bot
-- messages would cross the limit is refused with all its messages; one that fits counts exactly.
select tests.act_as_superuser();
update public.companies set monthly_message_limit =
       (select sum(message_count) + 3 from public.company_message_usage
         where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date)
 where id = tests.company_id('A');
create temp table usage_batch as
select u.message_count, u.total_message_count, m.messages
  from (select sum(message_count)::bigint as message_count, sum(total_message_count)::bigint as total_message_count
          from public.company_message_usage
         where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date) u,
       (select count(*) as messages from public.messages
         where company_id = tests.company_id('A') and conversation_id = tests.conversation_id('A', 'usage')) m;
grant select on usage_batch to service_role;
select tests.act_as_service();
-- One multi-row insert ... values: on a Citus cluster an insert ... select of rows computed on
-- the coordinator is sent to the shards as COPY, whose errors arrive without their SQLSTATE
-- (XX000, the message kept: docs/scale-out.md, "What services must send").
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content)
                    values (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'end_user', 'Batch 1'),
                           (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Batch 2'),
                           (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Batch 3'),
                           (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Batch 4'),
                           (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Batch 5') $$,
    'NA001', null, 'a batch whose bot messages would cross the monthly limit is refused with NA001');
select results_eq($$ select u.message_count, u.total_message_count, m.messages
                       from (select sum(message_count)::bigint as message_count,
                                    sum(total_message_count)::bigint as total_message_count
                               from public.company_message_usage
                              where company_id = tests.company_id('A')
                                and month = date_trunc('month', now() at time zone 'UTC')::date) u,
                            (select count(*) as messages from public.messages
                              where company_id = tests.company_id('A')
                                and conversation_id = tests.conversation_id('A', 'usage')) m $$,
    $$ select message_count, total_message_count, messages from usage_batch $$,
    'a refused batch is refused whole: none of its messages is stored or counted (its end-user message neither)');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content)
                   select tests.company_id('A'), tests.conversation_id('A', 'usage'),
                          (case when g = 1 then 'end_user' else 'bot' end)::public.message_sender_type, 'Batch ' || g
                     from generate_series(1, 4) g $$,
    'a batch whose bot messages reach the limit exactly is accepted');
select results_eq($$ select u.message_count - b.message_count, u.total_message_count - b.total_message_count
                       from (select sum(message_count)::bigint as message_count,
                                    sum(total_message_count)::bigint as total_message_count
                               from public.company_message_usage
                              where company_id = tests.company_id('A')
                                and month = date_trunc('month', now() at time zone 'UTC')::date) u, usage_batch b $$,
    $$ values (3::bigint, 4::bigint) $$,
    'an accepted batch counts each of its messages exactly once (3 billable of 4)');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                    (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Over the limit') $$,
    'NA001', null, 'the monthly message limit cannot be exceeded');
-- Caller-chosen time: the usage month is the server's (transaction time), never the
-- message's created_at, which the backend may set (the channel's reported time).
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content, created_at) values
                    (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Dated last month',
                     now() - interval '2 months') $$,
    'NA001', null, 'a bot message dated months back is counted in the current month and refused when its allowance is used up');
select throws_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content, created_at) values
                    (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'bot', 'Dated next century',
                     now() + interval '100 years') $$,
    'NA001', null, 'a bot message dated a century ahead is counted in the current month and refused when its allowance is used up');
select tests.act_as_superuser();
create temp table usage_backdated as
select (select coalesce(sum(total_message_count), 0)::bigint from public.company_message_usage
         where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date) as this_month,
       (select count(*) from public.company_message_usage
         where company_id = tests.company_id('A') and month <> date_trunc('month', now() at time zone 'UTC')::date) as other_months;
select tests.act_as_service();
insert into public.messages (company_id, conversation_id, sender_type, content, created_at) values
    (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'end_user', 'Reported as sent last year', now() - interval '1 year');
select tests.act_as_superuser();
select results_eq($$ select (select sum(total_message_count)::bigint from public.company_message_usage
                              where company_id = tests.company_id('A') and month = date_trunc('month', now() at time zone 'UTC')::date) - b.this_month,
                            (select count(*) from public.company_message_usage
                              where company_id = tests.company_id('A') and month <> date_trunc('month', now() at time zone 'UTC')::date) - b.other_months
                       from usage_backdated b $$,
    $$ values (1::bigint, 0::bigint) $$,
    'a backdated message is counted in the month it is written, not in the month of its reported created_at');
select tests.act_as_service();
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   (tests.company_id('A'), tests.conversation_id('A', 'usage'), 'end_user', 'Hello? Anyone?') $$,
    'end-user messages are still accepted when the monthly allowance is used up');
select lives_ok($$ insert into public.messages (company_id, conversation_id, sender_type, content) values
                   (tests.company_id('B'), tests.conversation_id('B', 'usage'), 'bot', 'B is not limited') $$,
    'one company''s message limit does not affect another company');

-- Company plan, billing and usage counters -------------------------------------------
select tests.act_as('A', 'owner');
select is(
  array[tests.attempt($$ update public.companies set subscription_plan = 'free' where id = tests.company_id('A') $$),
        tests.attempt($$ update public.companies set subscription_status = 'active' where id = tests.company_id('A') $$),
        tests.attempt($$ update public.companies set monthly_message_limit = 999999999 where id = tests.company_id('A') $$)],
  array['42501: permission denied for table companies', '42501: permission denied for table companies', '42501: permission denied for table companies'],
  'the owner cannot change the plan, the billing status or the message allowance of the company');
select is(
  array[tests.attempt($$ update public.companies set current_chatbot_count = 0 where id = tests.company_id('A') $$),
        tests.attempt($$ update public.company_message_usage set message_count = 0 where company_id = tests.company_id('A') $$),
        tests.attempt($$ delete from public.company_message_usage where company_id = tests.company_id('A') $$)],
  array['42501: permission denied for table companies', '42501: permission denied for table company_message_usage',
        '42501: permission denied for table company_message_usage'],
  'the owner cannot reset the usage counters the plan limits are checked against');

select * from finish();
rollback;
