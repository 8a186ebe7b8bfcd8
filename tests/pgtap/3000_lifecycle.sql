-- Data lifecycle rules (migrations 3000-3999): archival moves with counts before and
-- after, nothing younger than the retention setting or still open moves, legal holds
-- block every deletion path, retention deletes what is past delete_after_days (audit
-- logs only after 7 years), analytics re-runs give identical numbers, and the archive
-- is readable by owner/administrador only.
begin;
select plan(31);

-- close every conversation of the fixtures, so the ones with messages, reactions,
-- knowledge queries and escalations are archivable too
update public.conversations set status = 'closed' where status <> 'closed';

create temp table before_counts as
select (select count(*) from public.conversations) as conv, (select count(*) from archive.conversations_archived) as conv_a,
       (select count(*) from public.messages) as msg, (select count(*) from archive.messages_archived) as msg_a,
       (select count(*) from public.message_reactions) as rx, (select count(*) from archive.message_reactions_archived) as rx_a,
       (select count(*) from public.knowledge_queries) as kq, (select count(*) from archive.knowledge_queries_archived) as kq_a,
       (select count(*) from public.hitl_escalations) as esc, (select count(*) from archive.hitl_escalations_archived) as esc_a,
       (select count(*) from public.integration_logs) as logs, (select count(*) from archive.integration_logs_archived) as logs_a,
       (select count(*) from public.analytics_daily) as ad, (select count(*) from archive.analytics_archived) as ad_a;
create temp table message_fingerprint as
select company_id, id, md5(row(company_id, id, conversation_id, chatbot_id, sender_type, sender_id, content,
                                processing_time_ms, token_count, created_at)::text) as fp
  from public.messages;

-- Nothing is young enough ----------------------------------------------------------
select is(private.archive_conversations_batch(now(), 1000), '{}'::jsonb,
    'a conversation closed less than archive_after_days ago is not archived');

update public.subscription_plans set archive_after_days = 1000, cold_after_days = 1100, delete_after_days = 3000;
select is(private.archive_conversations_batch(now() + interval '2 years', 1000), '{}'::jsonb,
    'the archive age is the company''s plan setting (archive_after_days), not a constant');
update public.subscription_plans set archive_after_days = 365, cold_after_days = 1095, delete_after_days = 2555;

-- A legal hold on one conversation keeps it live -------------------------------------
insert into public.legal_holds (company_id, conversation_id, reason, set_by)
values (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'Litigation 2026-17', 'legal@a.example');

create temp table first_move as select private.archive_conversations_batch(now() + interval '2 years', 1000) as moved;

select is((select count(*) from public.conversations), 1::bigint,
    'archival moves every closed conversation past archive_after_days except the held one');
select is((select (moved->>'conversations')::bigint from first_move),
          (select b.conv - 1 from before_counts b),
    'the batch reports as many conversations as it moved');
select is((select count(*) from public.conversations) + (select count(*) from archive.conversations_archived),
          (select b.conv + b.conv_a from before_counts b),
    'conversations: live + archived count is the same before and after the move');
select is((select count(*) from public.messages) + (select count(*) from archive.messages_archived),
          (select b.msg + b.msg_a from before_counts b),
    'messages: live + archived count is the same before and after the move');
select is((select count(*) from public.message_reactions) + (select count(*) from archive.message_reactions_archived),
          (select b.rx + b.rx_a from before_counts b),
    'message reactions: live + archived count is the same before and after the move');
select is((select count(*) from public.knowledge_queries) + (select count(*) from archive.knowledge_queries_archived),
          (select b.kq + b.kq_a from before_counts b),
    'knowledge queries: live + archived count is the same before and after the move');
select is((select count(*) from public.hitl_escalations) + (select count(*) from archive.hitl_escalations_archived),
          (select b.esc + b.esc_a from before_counts b),
    'hitl escalations: live + archived count is the same before and after the move');
select is((select count(*) from public.messages m where m.conversation_id <> tests.conversation_id('A', 'assigned-human')), 0::bigint,
    'no message of an archived conversation is left in the live table');
select is((select count(*) from message_fingerprint f
            where f.fp is distinct from coalesce(
              (select md5(row(m.company_id, m.id, m.conversation_id, m.chatbot_id, m.sender_type, m.sender_id, m.content,
                              m.processing_time_ms, m.token_count, m.created_at)::text)
                 from archive.messages_archived m where m.company_id = f.company_id and m.id = f.id),
              (select md5(row(m.company_id, m.id, m.conversation_id, m.chatbot_id, m.sender_type, m.sender_id, m.content,
                              m.processing_time_ms, m.token_count, m.created_at)::text)
                 from public.messages m where m.company_id = f.company_id and m.id = f.id))), 0::bigint,
    'every message is in exactly one place, with identical content, after the move');
select is(private.archive_conversations_batch(now() + interval '2 years', 1000), '{}'::jsonb,
    'a second archival run moves nothing more (idempotent)');

-- integration logs and analytics ------------------------------------------------------
select is((private.archive_integration_logs_batch(now() + interval '2 years', 1000)->>'integration_logs')::bigint,
          (select b.logs from before_counts b),
    'integration logs past archive_after_days move to the archive (count moved = count that was live)');
select is((select count(*) from public.integration_logs) + (select count(*) from archive.integration_logs_archived),
          (select b.logs + b.logs_a from before_counts b),
    'integration logs: live + archived count is the same before and after the move');
select is((private.archive_analytics_batch(now() + interval '2 years', 1000)->>'analytics_daily')::bigint,
          (select b.ad from before_counts b),
    'daily analytics rows past archive_after_days move to analytics_archived');
select is((select count(*) from public.analytics_daily) + (select count(*) from archive.analytics_archived),
          (select b.ad + b.ad_a from before_counts b),
    'analytics: live + archived count is the same before and after the move');

-- analytics over archived days --------------------------------------------------------
call public.refresh_analytics_daily(date '2024-03-01');
select is((select count(*) from public.analytics_daily where day = date '2024-03-01'), 0::bigint,
    'an archived analytics day is frozen: re-running its roll-up writes nothing to analytics_daily');

-- Legal holds block every deletion path -------------------------------------------------
select throws_ok($$ delete from public.conversations where id = tests.conversation_id('A', 'assigned-human') $$,
    '42501', null, 'a held live conversation cannot be deleted, not even by the superuser');
insert into public.legal_holds (company_id, conversation_id, reason, set_by)
values (tests.company_id('A'), tests.archived_conversation_id('A', 'assigned'), 'Litigation 2026-18', 'legal@a.example');
select throws_ok($$ delete from archive.conversations_archived where id = tests.archived_conversation_id('A', 'assigned') $$,
    '42501', null, 'a held archived conversation cannot be deleted');
select throws_ok($$ delete from archive.messages_archived where conversation_id = tests.archived_conversation_id('A', 'assigned') $$,
    '42501', null, 'messages of a held archived conversation cannot be deleted');
select throws_ok($$ delete from public.companies where id = tests.company_id('A') $$,
    '42501', null, 'a company with an active legal hold cannot be deleted');
select throws_ok($$ delete from public.legal_holds where company_id = tests.company_id('A') and released_at is null $$,
    '42501', null, 'an active legal hold cannot be deleted (release it first)');
select throws_ok($$ update public.legal_holds set conversation_id = null where company_id = tests.company_id('A') and released_at is null $$,
    '22023', null, 'what a legal hold covers cannot be changed');

-- Retention: 10 years later everything unheld is gone, held rows stay ---------------------
create temp table retention_run as select private.retention_batch(now() + interval '10 years', 100000) as deleted;
select is((select count(*) from archive.conversations_archived where company_id = tests.company_id('B')), 0::bigint,
    'retention deletes archived conversations past delete_after_days');
select is((select count(*) from archive.messages_archived where company_id = tests.company_id('B'))
        + (select count(*) from archive.message_reactions_archived where company_id = tests.company_id('B'))
        + (select count(*) from archive.knowledge_queries_archived where company_id = tests.company_id('B'))
        + (select count(*) from archive.hitl_escalations_archived where company_id = tests.company_id('B')), 0::bigint,
    'retention deletes the messages, reactions, knowledge queries and escalations of those conversations');
select ok((select count(*) from archive.conversations_archived where id = tests.archived_conversation_id('A', 'assigned')) = 1
          and (select count(*) from archive.messages_archived where conversation_id = tests.archived_conversation_id('A', 'assigned')) = 1
          and (select count(*) from public.conversations where id = tests.conversation_id('A', 'assigned-human')) = 1,
    'a legal hold blocks retention deletion of the held conversations, live and archived');
select is((select count(*) from public.audit_logs where company_id = tests.company_id('B')), 0::bigint,
    'retention purges audit rows older than 7 years through the audit purge hook');

insert into public.legal_holds (company_id, reason, set_by)
values (tests.company_id('B'), 'Regulator request 2026-02', 'dpo@b.example');
insert into public.audit_logs (company_id, actor_role, action, event_name, created_at)
values (tests.company_id('B'), 'service_role', 'custom', 'data.export', now() - interval '9 years');
select is(private.purge_audit_logs(now(), 1000), 0::bigint,
    'a company-wide legal hold keeps the company''s audit trail past 7 years');

-- Who may read the archive -----------------------------------------------------------------
select tests.act_as('A', 'administrador');
select ok((select count(*) from archive.conversations_archived) > 0
          and (select count(*) from archive.conversations_archived where company_id <> tests.company_id('A')) = 0,
    'an administrador reads the archive of their own company only');
select tests.act_as('A', 'supervisor');
select is((select count(*) from archive.messages_archived), 0::bigint,
    'a supervisor cannot read the archive');
select throws_ok($$ select private.archive_conversations_batch(now(), 10) $$,
    '42501', null, 'an application user cannot run a lifecycle job');
select tests.act_as_superuser();

select * from finish();
rollback;
