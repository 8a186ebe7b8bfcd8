-- Erasures re-applied after a restore or an import (migrations 4700-4710):
-- private.erasure_replay carries out again a request of a newer ledger, named only by its
-- ledger id and subject reference: it finds the end user whose id hashes to the reference
-- (live and archived conversations), erases them through public.erase_end_user (same rules)
-- and marks the row replay_of the request; a request already here or already replayed is left
-- alone (replaying twice changes nothing); one matching nobody is recorded with nothing
-- erased; only service_role may call it. Import, CLI and restore drill: tests/test_tenant_transfer.py,
-- tests/test_restore_check.py.
begin;
select plan(10);

-- rule: erasure-replay (docs/rules.md)
-- An archived conversation of the end user '+34600000001' of company A (it has a live one in
-- the fixtures): what a restored backup older than the erasure holds.
insert into archive.conversations_archived (company_id, id, chatbot_id, end_user_id, channel, status, is_hitl_active,
    bot_turns_without_resolution, closed_at, created_at, updated_at, archived_at)
values (tests.company_id('A'), tests.new_id('conversation', 'A', 'replay archived'), tests.chatbot_id('A', 'assigned'),
        '+34600000001', 'whatsapp', 'closed', false, 0, now(), now(), now(), now());
insert into archive.messages_archived (company_id, id, conversation_id, chatbot_id, sender_type, content, created_at, archived_at)
values (tests.company_id('A'), tests.new_id('message', 'A', 'replay archived'), tests.id('conversation', 'A', 'replay archived'),
        tests.chatbot_id('A', 'assigned'), 'end_user', 'My address is Calle Mayor 1', now(), now());
create temp table b_before as select tests.company_fingerprint(tests.company_id('B')) as fingerprint;
create temp table req as
  select tests.new_id('erasure', 'A', 'replayed') as id, tests.new_id('erasure', 'A', 'nobody') as nobody,
         tests.new_id('erasure', 'Z', 'absent') as absent, tests.new_id('company', 'Z', 'absent') as absent_company,
         encode(sha256(convert_to(tests.company_id('A')::text || ':+34600000001', 'UTF8')), 'hex') as ref;
grant select on req to service_role;

select is(tests.attempt_as('owner', $$select private.erasure_replay(tests.company_id('A'), tests.id('erasure', 'A', 'replayed'), repeat('a', 64), 'GDPR ticket 1')$$),
    '42501: permission denied for function erasure_replay', 'a member (even the owner) cannot replay an erasure');

select tests.act_as_service();
create temp table first_replay as
  select private.erasure_replay(tests.company_id('A'), (select id from req), (select ref from req), 'GDPR ticket 1') as r;
create temp table second_replay as
  select private.erasure_replay(tests.company_id('A'), (select id from req), (select ref from req), 'GDPR ticket 1') as r;
create temp table nobody as
  select private.erasure_replay(tests.company_id('A'), (select nobody from req),
                                encode(sha256(convert_to(tests.company_id('A')::text || ':never-here', 'UTF8')), 'hex'),
                                'GDPR ticket 2') as r;
create temp table absent as
  select private.erasure_replay((select absent_company from req), (select absent from req),
                                repeat('b', 64), 'GDPR ticket 3') as r;
select tests.act_as_superuser();

select is((select r ->> 'outcome' from first_replay), 'replayed', 'a request this database lacks is replayed');
select is((select count(*) from public.conversations where company_id = tests.company_id('A') and end_user_id = '+34600000001')::int
          + (select count(*) from archive.conversations_archived where company_id = tests.company_id('A') and end_user_id = '+34600000001')::int,
    0, 'the end user found by the hash of their id is erased, live and archived');
select is((select content from archive.messages_archived where company_id = tests.company_id('A') and id = tests.id('message', 'A', 'replay archived')),
    '[erased]', 'the archived message is redacted');
select is((select count(*) from private.erasure_ledger where company_id = tests.company_id('A') and replay_of = (select id from req)
             and subject_ref = (select ref from req) and status = 'done')::int,
    1, 'the ledger row of the replay names the request it replays');
select is((select r ->> 'outcome' from second_replay), 'already_present', 'replaying the same request again does nothing');
select is((select r ->> 'outcome' from nobody) || ' ' || (select erased::text from private.erasure_ledger
             where company_id = tests.company_id('A') and replay_of = tests.id('erasure', 'A', 'nobody')),
    'matched_nobody {}', 'a request matching nobody is recorded with nothing erased');
select is((select r ->> 'outcome' from absent), 'company_absent', 'a request of a company not in this database is reported, not recorded');
select is((select tests.company_fingerprint(tests.company_id('B'))), (select fingerprint from b_before),
    'company B (with an end user of the same id) is untouched');
select is((select count(*) from private.erasure_ledger l where strpos(row_to_json(l)::text, '34600000001') > 0)::int, 0,
    'the replay ledger rows hold no end user id');

select * from finish();
rollback;
