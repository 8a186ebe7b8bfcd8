"""`neurant-db doctor --data`: nothing on a clean, populated database (the fixtures and the
demo tenants), and each kind of inconsistency, planted as superuser with the triggers off
(session_replication_role = replica) in a scratch copy, is found, with its query and fix;
the fix the finding gives clears it where it is a statement to run."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget
from neurant_db.doctor_data import run_data_checks
from neurant_db.doctor_finding import Finding
from neurant_db.lifecycle_demo import load_demo
from neurant_db.summary import load_demo_data
from neurant_db.testdb import TestDatabase, commit_fixtures, test_settings

from .conftest import migrated_template, scratch_database

COMPANY_A = "aaaaaaaa-0000-0000-0000-000000000000"



@pytest.fixture(scope="module")
def template(neurant_server: TestDatabase) -> Iterator[str]:
    """Migrated, with the test fixtures and (profile vanilla: seeds/_demo_data.sql writes
    auth.users) the demo tenants: a clean populated database."""
    def populate(url: str) -> None:
        commit_fixtures(url)
        if test_settings().profile == "vanilla":
            load_demo_data(DatabaseTarget(url))

    with migrated_template(neurant_server.url, "doctor_data_tpl", populate) as name:
        yield name


@pytest.fixture
def db(neurant_server: TestDatabase, template: str) -> Iterator[str]:
    with scratch_database(neurant_server.url, template=template) as url:
        yield url


def _plant(url: str, statements: str) -> None:
    """Write as superuser with every trigger (and FK check) off: what a bad restore or a
    hand-made fix does."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(statements)


def _findings(url: str, timeout_ms: int = 30_000) -> list[Finding]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [f for f in run_data_checks(conn, timeout_ms) if f.level != "info"]


def _only(url: str, check: str) -> list[Finding]:
    found = _findings(url)
    assert found, f"{check}: nothing found"
    assert {f.check for f in found} == {check}, [f.as_dict() for f in found]
    for f in found:
        assert f.query and f.hint, f"{f.check} {f.object}: a finding shows its query and its fix"
    return found


def _run_query(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def test_a_clean_populated_database_gives_no_finding(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        counts = conn.execute("select (select count(*) from public.companies), (select count(*) from public.messages), "
                              "(select count(*) from archive.messages_archived)").fetchone()
    assert counts and all(n > 0 for n in counts), "the template is populated"
    assert _findings(db) == []


def test_the_generated_data_set_gives_no_finding(db: str) -> None:
    """lifecycle_demo.py (the rows of `upgrade-check --rows` and `jobs bench`) loads with the
    triggers off and writes their bookkeeping after: consistent too."""
    with psycopg.connect(db, autocommit=True) as conn:
        load_demo(conn, companies=3, conversations=20, messages=4, first=500)
    assert _findings(db) == []


def test_a_drifted_company_counter_is_found_and_its_fix_clears_it(db: str) -> None:
    _plant(db, f"update public.companies set current_chatbot_count = current_chatbot_count + 3 "
               f"where id = '{COMPANY_A}'")
    [finding] = _only(db, "data.counter")
    assert finding.level == "error" and "current_chatbot_count" in finding.object
    [(counter, rows)] = _run_query(db, finding.query)
    assert counter == rows + 3  # type: ignore[operator]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(finding.hint.split(" (the row lock first")[0])
    assert _findings(db) == []


def test_rows_written_with_the_triggers_off_leave_every_counter_of_theirs_wrong(db: str) -> None:
    _plant(db, f"""
        insert into public.user_invitations (company_id, email, role, token_hash, invited_by)
        select company_id, 'planted@example.test', 'operador', sha256('planted'), id
          from public.users where company_id = '{COMPANY_A}' and role = 'owner';
        insert into public.integrations (company_id, type, name, config)
        values ('{COMPANY_A}', 'webhook', 'planted hook', '{{}}');
        update public.documents set size_bytes = size_bytes + 10 where company_id = '{COMPANY_A}';
        delete from public.users where company_id = '{COMPANY_A}' and role = 'operador'
          and id not in (select sender_id from public.messages where sender_id is not null)
          and id not in (select user_id from public.chatbot_operators)
          and id not in (select coalesce(uploaded_by, id) from public.documents)
          and id not in (select coalesce(created_by, id) from public.integrations)""")
    found = {f.object.rsplit(" ", 1)[1] for f in _findings(db) if f.check == "data.counter"}
    assert {"current_pending_invitation_count", "current_integration_count",
            "current_storage_bytes"} <= found, found


def test_a_document_chunk_count_off_is_found(db: str) -> None:
    _plant(db, "update public.documents set chunk_count = chunk_count + 2 "
               "where (company_id, id) = (select company_id, id from public.documents order by id limit 1)")
    [finding] = _only(db, "data.counter")
    assert finding.object.endswith("chunk_count")


def test_messages_stored_but_never_counted_in_usage_are_found(db: str) -> None:
    _plant(db, f"""
        insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
        select company_id, id, chatbot_id, 'bot', 'planted ' || g
          from public.conversations, generate_series(1, 5) g
         where company_id = '{COMPANY_A}' limit 5""")
    [finding] = _only(db, "data.usage")
    assert finding.level == "error" and COMPANY_A in finding.object
    stored, counted = _run_query(db, finding.query)[0]
    assert stored > counted  # type: ignore[operator]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(finding.hint[finding.hint.index("insert into"):])
    assert _findings(db) == []


def test_usage_above_the_stored_messages_is_no_finding(db: str) -> None:
    """Retention deletes messages, the usage they were billed in stays: stored < counted is
    the normal direction."""
    _plant(db, f"""
        delete from public.messages m where m.company_id = '{COMPANY_A}' and m.sender_type = 'end_user'
           and not exists (select 1 from public.knowledge_queries q where q.message_id = m.id)
           and not exists (select 1 from public.message_reactions r where r.message_id = m.id)""")
    assert _findings(db) == []


def test_a_check_constraint_left_not_valid_is_found_and_a_broken_row_is_an_error(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("alter table public.chatbots add constraint chatbots_doctor_probe_check "
                     "check (char_length(name) < 1000) not valid")
    [finding] = _only(db, "data.not_valid")
    assert finding.level == "warning" and "validate constraint" in finding.hint
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("alter table public.chatbots drop constraint chatbots_doctor_probe_check")
        conn.execute("alter table public.chatbots add constraint chatbots_doctor_probe_check "
                     "check (name <> 'Support Bot' and name not like '%Bot%' and name not like '%bot%') not valid")
    [finding] = _only(db, "data.not_valid")
    assert finding.level == "error" and _run_query(db, finding.query)


def test_an_invalid_index_is_found_once_by_the_check_doctor_has(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("create index chatbots_doctor_probe_idx on public.chatbots (name)")
        conn.execute("update pg_index set indisvalid = false "
                     "where indexrelid = 'public.chatbots_doctor_probe_idx'::regclass")
    [finding] = _only(db, "index.invalid")
    assert finding.object.endswith("chatbots_doctor_probe_idx")


def test_an_archived_message_whose_archived_conversation_is_gone_is_an_orphan(db: str) -> None:
    _plant(db, "delete from archive.conversations_archived "
               "where id = (select conversation_id from archive.messages_archived order by id limit 1)")
    found = _only(db, "data.orphan")
    assert any(f.object == "archive.messages_archived.messages_archived_conversation_fkey" for f in found)
    for f in found:
        assert _run_query(db, f.query), f"{f.object}: its query lists the orphans"


def test_a_cold_export_pointing_at_no_job_run_is_an_orphan(db: str) -> None:
    _plant(db, "update private.cold_exports set job_run_id = 2147483000")
    [finding] = _only(db, "data.orphan")
    assert finding.object == "private.cold_exports.cold_exports_job_run_fkey"


def test_a_cold_export_restored_without_a_restore_time_is_found(db: str) -> None:
    _plant(db, "update private.cold_exports set status = 'restored' "
               "where id = (select id from private.cold_exports order by id limit 1)")
    [finding] = _only(db, "data.cold_export")
    assert "restored_at is null" in finding.message


def test_a_conversation_both_live_and_archived_is_found(db: str) -> None:
    _plant(db, """
        insert into archive.conversations_archived
        select company_id, id, chatbot_id, end_user_id, channel, status, is_hitl_active, assigned_operator_id,
               hitl_escalated_at, bot_turns_without_resolution, last_message_at, closed_at, created_at, updated_at,
               now()
          from public.conversations order by id limit 1""")
    [finding] = _only(db, "data.duplicate")
    assert finding.object == "public.conversations" and len(_run_query(db, finding.query)) == 1


def test_a_legal_hold_on_a_conversation_that_is_nowhere_is_found(db: str) -> None:
    _plant(db, f"""
        delete from private.cold_exports;
        insert into public.legal_holds (company_id, conversation_id, reason, set_by)
        values ('{COMPANY_A}', gen_random_uuid(), 'Planted hold on nothing.', 'doctor test')""")
    [finding] = _only(db, "data.legal_hold")
    assert finding.level == "error"
    assert _run_query(db, finding.query) == [(0, 0)]


def test_amcheck_checks_btree_indexes_where_installed_and_says_so_where_not(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("drop extension if exists amcheck")
        info = [f for f in run_data_checks(conn) if f.check == "data.amcheck"]
        assert [f.level for f in info] == ["info"] and "not installed" in info[0].message
        try:
            conn.execute("create extension amcheck")
        except psycopg.errors.FeatureNotSupported as exc:  # no contrib on this server
            pytest.skip(f"amcheck not available: {exc}")
        except psycopg.errors.UndefinedFile as exc:
            pytest.skip(f"amcheck not available: {exc}")
        assert [f for f in run_data_checks(conn) if f.check == "data.amcheck"] == []


def test_amcheck_finds_a_btree_index_out_of_order(db: str) -> None:
    """Planted by changing the comparison function of the index's operator class after the
    build: the index's pages are then out of order for it, which bt_index_check reports."""
    with psycopg.connect(db, autocommit=True) as conn:
        try:
            conn.execute("create extension if not exists amcheck")
        except psycopg.Error as exc:
            pytest.skip(f"amcheck not available: {exc}")
        conn.execute("""
            create function public.doctor_probe_cmp(int4, int4) returns int4 language sql immutable
              as 'select case when $1 < $2 then -1 when $1 > $2 then 1 else 0 end';
            create operator class public.doctor_probe_ops for type int4 using btree as
              operator 1 <, operator 2 <=, operator 3 =, operator 4 >=, operator 5 >,
              function 1 public.doctor_probe_cmp(int4, int4);
            create table public.doctor_probe (v int4);
            insert into public.doctor_probe select generate_series(1, 2000);
            create index doctor_probe_idx on public.doctor_probe (v public.doctor_probe_ops);
            create or replace function public.doctor_probe_cmp(int4, int4) returns int4 language sql immutable
              as 'select case when $1 < $2 then 1 when $1 > $2 then -1 else 0 end';""")
    [finding] = _only(db, "data.amcheck")
    assert finding.level == "error" and finding.object == "public.doctor_probe_idx"
    assert "reindex index concurrently" in finding.hint


def test_a_check_that_exceeds_statement_timeout_is_a_warning_and_the_others_still_run(db: str) -> None:
    _plant(db, f"update public.companies set current_user_count = current_user_count + 1 where id = '{COMPANY_A}'")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("create function public.doctor_probe_sleep() returns boolean language sql "
                     "as 'select pg_sleep(2) is not null'")
        conn.execute("comment on function public.doctor_probe_sleep() is 'test probe'")
        conn.execute("alter table public.chatbots add constraint chatbots_doctor_slow_check "
                     "check (public.doctor_probe_sleep()) not valid")
    found = _findings(db, timeout_ms=500)
    slow = [f for f in found if f.check == "data.not_valid"]
    assert [f.level for f in slow] == ["warning"] and "did not finish" in slow[0].message
    assert any(f.check == "data.counter" for f in found), "the checks after the slow one still ran"


def test_cli_doctor_data_json_and_exit_code(db: str) -> None:
    runner = CliRunner()
    clean = runner.invoke(cli, ["--database-url", db, "doctor", "--data", "--json"])
    assert clean.exit_code == 0, clean.output
    assert [f for f in json.loads(clean.output) if f["level"] != "info"] == []
    _plant(db, f"update public.companies set current_user_count = 99 where id = '{COMPANY_A}'")
    dirty = runner.invoke(cli, ["--database-url", db, "doctor", "--data", "--json", "--statement-timeout", "5000"])
    assert dirty.exit_code == 1, dirty.output
    [finding] = [f for f in json.loads(dirty.output) if f["level"] == "error"]
    assert finding["check"] == "data.counter" and finding["query"] and finding["hint"]
    text = runner.invoke(cli, ["--database-url", db, "doctor", "--data"])
    assert text.exit_code == 1 and "query: select" in text.output and "data.counter" in text.output


def test_a_check_waiting_on_a_lock_gives_up_after_the_timeout_and_finds_nothing_false(db: str) -> None:
    """A migration holding ACCESS EXCLUSIVE on companies: the checks reading it stop after
    lock_timeout with a warning each; no error is made up, and doctor returns."""
    with psycopg.connect(db) as locker:
        locker.execute("lock table public.companies in access exclusive mode")
        found = _findings(db, timeout_ms=100)
        locker.rollback()
    counters = [f for f in found if f.check == "data.counter"]
    assert counters and all(f.level == "warning" and "did not finish" in f.message for f in counters), counters
    assert [f for f in found if f.level == "error"] == []
