-- Data lifecycle rules (migrations 3000-3999): archival moves with counts before and
-- after, nothing younger than the retention setting or still open moves, legal holds
-- block every delete, truncate and content update on every table (live, archived, by
-- cascade, any role), holds and archived rows reference their own company only,
-- retention deletes what is past delete_after_days (audit logs only after 7 years),
-- analytics re-runs give identical numbers, and the archive is readable by
-- owner/administrador only.
begin;
select plan(97);

-- rule: legal-hold (docs/rules.md)
-- Legal holds cover every table, by every path (issue 9, finding 3) --------------------
-- pg_temp.under_hold(identity, sql) runs sql as an isolation identity (or 'superuser', the
-- migration owner), always rolled back: 'refused by the hold' is a 42501 whose hint names
-- an active hold; 'changed N rows' a statement that went through.
create function pg_temp.under_hold(p_identity text, p_sql text) returns text
language plpgsql as $$
declare
  v text;
  v_n bigint;
  v_state text;
  v_hint text;
  -- read before the attempt, by its caller (the superuser): on a Citus cluster no other user
  -- may read a placement the attempt wrote, even rolled back
  v_holds text[] := array(select h.id::text from public.legal_holds h where h.released_at is null);
begin
  if p_identity <> 'superuser' then
    perform tests.become(p_identity);
  end if;
  begin
    execute p_sql;
    get diagnostics v_n = row_count;
    v := format('changed %s rows', v_n);
    raise exception using errcode = 'NX998';
  exception
    when sqlstate 'NX998' then null;
    when others then
      get stacked diagnostics v_state = returned_sqlstate, v_hint = pg_exception_hint;
      v := v_state || ': ' || sqlerrm;
  end;
  perform tests.act_as_superuser();
  if v_state = '42501' and exists (select 1 from pg_catalog.unnest(v_holds) h(id)
                                    where strpos(coalesce(v_hint, ''), h.id) > 0) then
    v := 'refused by the hold';
  end if;
  return v;
end $$;

insert into public.legal_holds (company_id, id, conversation_id, reason, set_by) values
  (tests.company_id('A'), tests.new_id('legal_hold', 'A', 'live conversation'), tests.conversation_id('A', 'assigned-human'),
   'Litigation 2026-31', 'legal@a.example'),
  (tests.company_id('A'), tests.new_id('legal_hold', 'A', 'archived conversation'), tests.archived_conversation_id('A', 'assigned'),
   'Litigation 2026-32', 'legal@a.example');

-- service_role, by direct statement, on every table that hangs off a conversation
select is(pg_temp.under_hold('service_role', format('delete from public.conversations where id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot delete a held conversation (the hint names the hold)');
select is(pg_temp.under_hold('superuser', format('update public.messages set content = ''forged'' where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'not even the migration owner can rewrite messages of a held conversation');
select is(pg_temp.under_hold('service_role', format('delete from public.messages where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot delete messages of a held conversation');
select is(pg_temp.under_hold('service_role', format('update public.messages set content = ''forged'' where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot rewrite messages of a held conversation');
select is(pg_temp.under_hold('service_role', format('delete from public.message_reactions where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot delete reactions of a held conversation');
select is(pg_temp.under_hold('service_role', format('update public.message_reactions set comment = ''forged'' where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot rewrite reactions of a held conversation');
select is(pg_temp.under_hold('service_role', format('delete from public.hitl_escalations where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot delete HITL escalations of a held conversation');
select is(pg_temp.under_hold('service_role', format('update public.hitl_escalations set detail = ''forged'' where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot rewrite HITL escalations of a held conversation');
select is(pg_temp.under_hold('service_role', format('delete from public.knowledge_queries where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot delete knowledge queries of a held conversation');
select is(pg_temp.under_hold('service_role', format('update public.knowledge_queries set rank = rank + 1 where conversation_id = %L', tests.conversation_id('A', 'assigned-human'))),
    'refused by the hold', 'service_role cannot rewrite knowledge queries of a held conversation');
select is(pg_temp.under_hold('service_role', format('delete from archive.conversations_archived where id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot delete a held archived conversation');
select is(pg_temp.under_hold('service_role', format('update archive.conversations_archived set end_user_id = ''forged'' where id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot rewrite a held archived conversation');
select is(pg_temp.under_hold('service_role', format('delete from archive.messages_archived where conversation_id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot delete archived messages of a held conversation');
select is(pg_temp.under_hold('service_role', format('update archive.messages_archived set content = ''forged'' where conversation_id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot rewrite archived messages of a held conversation');
select is(pg_temp.under_hold('service_role', format('delete from archive.message_reactions_archived where conversation_id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot delete archived reactions of a held conversation');
select is(pg_temp.under_hold('service_role', format('update archive.message_reactions_archived set comment = ''forged'' where conversation_id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot rewrite archived reactions of a held conversation');
select is(pg_temp.under_hold('service_role', format('delete from archive.hitl_escalations_archived where conversation_id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot delete archived HITL escalations of a held conversation');
select is(pg_temp.under_hold('service_role', format('update archive.hitl_escalations_archived set detail = ''forged'' where conversation_id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot rewrite archived HITL escalations of a held conversation');
select is(pg_temp.under_hold('service_role', format('delete from archive.knowledge_queries_archived where conversation_id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot delete archived knowledge queries of a held conversation');
select is(pg_temp.under_hold('service_role', format('update archive.knowledge_queries_archived set rank = rank + 1 where conversation_id = %L', tests.archived_conversation_id('A', 'assigned'))),
    'refused by the hold', 'service_role cannot rewrite archived knowledge queries of a held conversation');

-- by cascade and by the clean-up of a deleted member's references
select is(pg_temp.under_hold('service_role', format('delete from public.chatbots where id = %L', tests.chatbot_id('A', 'assigned'))),
    'refused by the hold', 'deleting the chatbot of a held conversation is refused (the cascade reaches held rows)');
select is(pg_temp.under_hold('service_role', format('delete from public.users where id = %L', tests.user_id('A', 'operador'))),
    'refused by the hold', 'deleting a member who wrote in a held conversation is refused (it would blank the sender of held messages)');
set constraints all immediate;  -- a truncate refuses to run while deferred FK checks are queued
select is(pg_temp.under_hold('superuser', 'truncate public.message_reactions'),
    'refused by the hold', 'a held table cannot be truncated, not even by the migration owner');
select is(pg_temp.under_hold('service_role', 'truncate archive.messages_archived cascade'),
    'refused by the hold', 'service_role cannot truncate an archive table holding held rows');
set constraints all deferred;

-- as the owner (a member with delete rights, deleting through public.delete_rows)
select is(pg_temp.under_hold('owner', format('select tests.member_delete(%L, %L)', 'public.conversations', format('id = %L', tests.conversation_id('A', 'assigned-human')))),
    'refused by the hold', 'the owner cannot delete a held conversation');
select is(pg_temp.under_hold('owner', format('select tests.member_delete(%L, %L)', 'public.messages', format('conversation_id = %L', tests.conversation_id('A', 'assigned-human')))),
    'refused by the hold', 'the owner cannot delete messages of a held conversation');
select is(pg_temp.under_hold('owner', format('select tests.member_delete(%L, %L)', 'public.message_reactions', format('conversation_id = %L', tests.conversation_id('A', 'assigned-human')))),
    'refused by the hold', 'the owner cannot delete reactions of a held conversation');
select is(pg_temp.under_hold('owner', format('select tests.member_delete(%L, %L)', 'public.chatbots', format('id = %L', tests.chatbot_id('A', 'assigned')))),
    'refused by the hold', 'the owner cannot delete the chatbot of a held conversation');

-- the HITL workflow goes on: status and assignment of a held conversation still change
select is(pg_temp.under_hold('owner', format('update public.conversations set status = ''closed'' where id = %L', tests.conversation_id('A', 'assigned-human'))),
    'changed 1 rows', 'a held conversation can still be closed (workflow columns are not held content)');

update public.legal_holds set released_at = now(), released_by = 'legal@a.example'
 where id in (tests.id('legal_hold', 'A', 'live conversation'), tests.id('legal_hold', 'A', 'archived conversation'));
insert into public.legal_holds (company_id, id, reason, set_by)
values (tests.company_id('A'), tests.new_id('legal_hold', 'A', 'company'), 'Regulator request 2026-33', 'dpo@a.example');

-- a company-wide hold covers the tables without a conversation, and the company itself
select is(pg_temp.under_hold('service_role', format('delete from public.integration_logs where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot delete integration logs');
select is(pg_temp.under_hold('service_role', format('update public.integration_logs set error_message = ''forged'' where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot rewrite integration logs');
select is(pg_temp.under_hold('service_role', format('delete from public.analytics_daily where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot delete daily analytics');
select is(pg_temp.under_hold('service_role', format('update public.analytics_daily set day = day - 1 where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot move daily analytics to another day');
select is(pg_temp.under_hold('service_role', format('delete from public.documents where id = %L', tests.document_id('A', 'returns policy'))),
    'refused by the hold', 'a company-wide hold: service_role cannot delete a document (nor, by cascade, its chunks)');
select is(pg_temp.under_hold('service_role', format('update public.documents set title = ''forged'' where id = %L', tests.document_id('A', 'returns policy'))),
    'refused by the hold', 'a company-wide hold: service_role cannot rewrite a document');
select is(pg_temp.under_hold('service_role', format('delete from public.document_chunks where document_id = %L', tests.document_id('A', 'returns policy'))),
    'refused by the hold', 'a company-wide hold: service_role cannot delete document chunks');
select is(pg_temp.under_hold('service_role', format('update public.document_chunks set content = ''forged'' where document_id = %L', tests.document_id('A', 'returns policy'))),
    'refused by the hold', 'a company-wide hold: service_role cannot rewrite document chunks');
select is(pg_temp.under_hold('service_role', format('delete from public.integrations where id = %L', tests.integration_id('A', 'with credentials'))),
    'refused by the hold', 'a company-wide hold: service_role cannot delete an integration (nor, by cascade, its logs)');
select is(pg_temp.under_hold('service_role', format('update public.integrations set name = ''forged'' where id = %L', tests.integration_id('A', 'with credentials'))),
    'refused by the hold', 'a company-wide hold: service_role cannot rewrite an integration');
select is(pg_temp.under_hold('service_role', format('delete from archive.integration_logs_archived where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot delete archived integration logs');
select is(pg_temp.under_hold('service_role', format('update archive.integration_logs_archived set error_message = ''forged'' where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot rewrite archived integration logs');
select is(pg_temp.under_hold('service_role', format('delete from archive.analytics_archived where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot delete archived analytics');
select is(pg_temp.under_hold('service_role', format('update archive.analytics_archived set messages_count = messages_count + 1 where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot rewrite archived (frozen) analytics');
select is(pg_temp.under_hold('service_role', format('delete from public.messages where company_id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold covers every conversation of the company');
select is(pg_temp.under_hold('service_role', format('delete from public.companies where id = %L', tests.company_id('A'))),
    'refused by the hold', 'a company-wide hold: service_role cannot delete the company');
set constraints all immediate;
select is(pg_temp.under_hold('service_role', 'truncate public.integration_logs'),
    'refused by the hold', 'a company-wide hold: service_role cannot truncate a table without conversations');
select is(pg_temp.under_hold('superuser', 'truncate public.companies cascade'),
    'refused by the hold', 'a company-wide hold: not even the migration owner can truncate the companies');
set constraints all deferred;
select is(pg_temp.under_hold('owner', format('select tests.member_delete(%L, %L)', 'public.documents', format('id = %L', tests.document_id('A', 'returns policy')))),
    'refused by the hold', 'a company-wide hold: the owner cannot delete a document');
select is(pg_temp.under_hold('owner', format('update public.documents set title = ''forged'' where id = %L', tests.document_id('A', 'returns policy'))),
    'refused by the hold', 'a company-wide hold: the owner cannot rewrite a document');
select is(pg_temp.under_hold('owner', format('update public.document_chunks set content = ''forged'' where document_id = %L', tests.document_id('A', 'returns policy'))),
    'refused by the hold', 'a company-wide hold: the owner cannot rewrite document chunks');
select is(pg_temp.under_hold('owner', format('select tests.member_delete(%L, %L)', 'public.integrations', format('id = %L', tests.integration_id('A', 'with credentials')))),
    'refused by the hold', 'a company-wide hold: the owner cannot delete an integration');
select is(pg_temp.under_hold('owner', format('update public.integrations set name = ''forged'' where id = %L', tests.integration_id('A', 'with credentials'))),
    'refused by the hold', 'a company-wide hold: the owner cannot rewrite an integration');
select is(pg_temp.under_hold('service_role', format('update public.analytics_daily set messages_count = messages_count + 1, refreshed_at = now() where company_id = %L', tests.company_id('A'))),
    'changed 2 rows', 'a company-wide hold: the roll-up may still recompute the counters of live daily analytics (derived from held rows)');
select is(pg_temp.under_hold('service_role', format('delete from public.analytics_daily where company_id = %L', tests.company_id('B'))),
    format('changed %s rows', (select count(*) from public.analytics_daily where company_id = tests.company_id('B'))),
    'a hold covers its own company only: company B''s rows can still be deleted');

-- the roll-up keeps running for everyone: a stale daily row of a held company stays
insert into public.analytics_daily (company_id, chatbot_id, day, messages_count)
values (tests.company_id('A'), tests.chatbot_id('A', 'spare'), date '2020-01-01', 3);
select lives_ok($$ call public.refresh_analytics_daily(date '2020-01-01') $$,
    'a company-wide hold does not make the analytics roll-up fail (it keeps the held company''s stale rows)');
select is((select messages_count from public.analytics_daily
            where company_id = tests.company_id('A') and chatbot_id = tests.chatbot_id('A', 'spare') and day = date '2020-01-01'), 3,
    'the stale daily row of a held company is kept by the roll-up');
update public.legal_holds set released_at = now(), released_by = 'dpo@a.example' where id = tests.id('legal_hold', 'A', 'company');

-- rule: legal-hold-own-company (docs/rules.md)
-- No reference crosses tenants: legal holds and the archive (issue 9, finding 4) ---------
select is(left(tests.attempt_as('service_role', format(
    'insert into public.legal_holds (company_id, conversation_id, reason, set_by) values (%L, %L, ''Cross-tenant probe'', ''probe'')',
    tests.company_id('A'), tests.conversation_id('B', 'assigned-human'))), 5),
    '23503', 'a legal hold cannot name another company''s live conversation');
select is(left(tests.attempt_as('service_role', format(
    'insert into public.legal_holds (company_id, conversation_id, reason, set_by) values (%L, %L, ''Cross-tenant probe'', ''probe'')',
    tests.company_id('A'), tests.archived_conversation_id('B', 'assigned'))), 5),
    '23503', 'a legal hold cannot name another company''s archived conversation');
select is(left(tests.attempt_as('service_role', format(
    'insert into public.legal_holds (company_id, conversation_id, reason, set_by) values (%L, %L, ''Probe'', ''probe'')',
    tests.company_id('A'), gen_random_uuid())), 5),
    '23503', 'a legal hold cannot name a conversation that exists nowhere');
select is(tests.attempt_as('service_role', format(
    'insert into public.legal_holds (company_id, conversation_id, reason, set_by) values (%L, %L, ''Probe'', ''probe'')',
    tests.company_id('A'), tests.archived_conversation_id('A', 'unassigned'))),
    'ok', 'a legal hold may name an archived conversation of its own company');

set constraints all immediate;
select is(left(tests.attempt_as('service_role', format(
    'insert into archive.message_reactions_archived (company_id, id, message_id, conversation_id, chatbot_id, reaction, comment, created_at) '
    'select company_id, gen_random_uuid(), id, %L, chatbot_id, ''thumbs_up'', '''', created_at from archive.messages_archived where conversation_id = %L',
    tests.archived_conversation_id('A', 'unassigned'), tests.archived_conversation_id('A', 'assigned'))), 5),
    '23503', 'an archived reaction belongs to the conversation of its message (a hold on that conversation covers it)');
select is(left(tests.attempt_as('service_role', format(
    'insert into archive.knowledge_queries_archived (company_id, id, conversation_id, message_id, chatbot_id, chunk_id, document_id, similarity, rank, created_at) '
    'select company_id, gen_random_uuid(), %L, id, chatbot_id, gen_random_uuid(), gen_random_uuid(), 0.5, 1, created_at from archive.messages_archived where conversation_id = %L',
    tests.archived_conversation_id('A', 'unassigned'), tests.archived_conversation_id('A', 'assigned'))), 5),
    '23503', 'an archived knowledge query belongs to the conversation of its message');
select is(left(tests.attempt_as('service_role', format(
    'insert into archive.messages_archived (company_id, id, conversation_id, chatbot_id, sender_type, content, created_at) '
    'values (%L, gen_random_uuid(), %L, %L, ''bot'', ''Probe.'', now())',
    tests.company_id('A'), tests.archived_conversation_id('A', 'assigned'), tests.chatbot_id('A', 'unassigned'))), 5),
    '23503', 'an archived message carries the chatbot of its conversation');
select is(left(tests.attempt_as('service_role', format(
    'insert into archive.hitl_escalations_archived (company_id, id, conversation_id, chatbot_id, reason, detail, created_at) '
    'values (%L, gen_random_uuid(), %L, %L, ''keyword'', ''Probe.'', now())',
    tests.company_id('A'), tests.archived_conversation_id('A', 'assigned'), tests.chatbot_id('A', 'unassigned'))), 5),
    '23503', 'an archived HITL escalation carries the chatbot of its conversation');
select is(left(tests.attempt_as('service_role', format(
    'insert into archive.message_reactions_archived (company_id, id, message_id, conversation_id, chatbot_id, reaction, comment, created_at) '
    'select %L, gen_random_uuid(), id, conversation_id, chatbot_id, ''thumbs_up'', '''', created_at from archive.messages_archived where conversation_id = %L',
    tests.company_id('A'), tests.archived_conversation_id('B', 'assigned'))), 5),
    '23503', 'an archived reaction cannot point at another company''s archived message');
select is(left(tests.attempt_as('service_role', format(
    'insert into archive.messages_archived (company_id, id, conversation_id, chatbot_id, sender_type, content, created_at) '
    'select %L, gen_random_uuid(), id, chatbot_id, ''bot'', ''Probe.'', now() from archive.conversations_archived where id = %L',
    tests.company_id('A'), tests.archived_conversation_id('B', 'assigned'))), 5),
    '23503', 'an archived message cannot point at another company''s archived conversation');
set constraints all deferred;

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

-- rule: retention (docs/rules.md)
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
