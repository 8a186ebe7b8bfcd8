"""Lifecycle jobs end to end, on scratch databases cloned from one migrated template:
counts before and after, concurrent writers, a run killed mid-batch and run again,
one run at a time, legal holds on every deletion path, export -> delete -> restore,
identical analytics re-runs, metrics, and the CLI."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.cold_storage import ExportInvalid, cold_export, restore_export, verify_export
from neurant_db.database import DatabaseTarget, with_database
from neurant_db.jobs import JobLocked, call_job, has_pg_cron
from neurant_db.lifecycle_demo import live_counts, load_demo
from neurant_db.testdb import TestDatabase

from .conftest import migrated_template, scratch_database

COMPANY_1 = "00000000-0000-4000-9000-000000000001"
FAR_FUTURE = datetime(2040, 1, 1, tzinfo=UTC)  # past every retention threshold of the demo data



@pytest.fixture(scope="module")
def template(neurant_server: TestDatabase) -> Iterator[str]:
    """A migrated database used as template for each test's database."""
    with migrated_template(neurant_server.url, "lifecycle_tpl") as name:
        yield name


@pytest.fixture
def db(neurant_server: TestDatabase, template: str) -> Iterator[str]:
    with scratch_database(neurant_server.url, template=template) as url:
        yield url


def _conn(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _ids(conn: psycopg.Connection, live: str, archived: str) -> list[str]:
    rows = conn.execute(f"select id::text from {live} union all select id::text from {archived}").fetchall()
    return [r[0] for r in rows]


def _assert_every_row_once(conn: psycopg.Connection, expected: dict[str, list[str]]) -> None:
    for (live, archived), ids in zip(
            [("public.conversations", "archive.conversations_archived"),
             ("public.messages", "archive.messages_archived"),
             ("public.message_reactions", "archive.message_reactions_archived"),
             ("public.hitl_escalations", "archive.hitl_escalations_archived")],
            expected.values(), strict=True):
        now = _ids(conn, live, archived)
        assert len(now) == len(set(now)), f"{live}: a row is in two places"
        assert sorted(now) == sorted(ids), f"{live}: rows lost or invented"


def _snapshot_ids(conn: psycopg.Connection) -> dict[str, list[str]]:
    return {
        "conversations": _ids(conn, "public.conversations", "archive.conversations_archived"),
        "messages": _ids(conn, "public.messages", "archive.messages_archived"),
        "reactions": _ids(conn, "public.message_reactions", "archive.message_reactions_archived"),
        "escalations": _ids(conn, "public.hitl_escalations", "archive.hitl_escalations_archived"),
    }


# rule: archive-exactly-once (docs/rules.md)
def test_archive_moves_every_row_and_counts_match(db: str) -> None:
    with _conn(db) as conn:
        before = load_demo(conn, companies=3, conversations=40, messages=4)
        result = call_job(conn, "archive", batch_size=7)
        after = live_counts(conn)
    assert result.status == "succeeded"
    for live in ("conversations", "messages", "message_reactions", "hitl_escalations", "integration_logs"):
        archived = f"archive.{live}_archived"
        assert after[f"public.{live}"] == 0
        assert after[archived] == before[f"public.{live}"] == result.rows[live]
    assert after["archive.analytics_archived"] == before["public.analytics_daily"] == result.rows["analytics_daily"]
    assert result.batches > 1
    with _conn(db) as conn:
        again = call_job(conn, "archive")
    assert sum(again.rows.values()) == 0, "a second run moves nothing (idempotent)"


def test_dry_run_counts_and_changes_nothing(db: str) -> None:
    with _conn(db) as conn:
        before = load_demo(conn, companies=2, conversations=10, messages=3)
        result = call_job(conn, "archive", dry_run=True)
        assert live_counts(conn) == before
    assert result.dry_run and result.rows["conversations"] == 20 and result.rows["messages"] == 60


def test_archive_while_the_platform_keeps_writing_loses_nothing(db: str) -> None:
    with _conn(db) as conn:
        load_demo(conn, companies=2, conversations=150, messages=4)
        chatbot = conn.execute("select id from public.chatbots where company_id = %s limit 1",
                               (COMPANY_1,)).fetchone()[0]  # type: ignore[index]
    written: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with _conn(db) as w:
                while not stop.is_set():
                    cid = str(uuid.uuid4())
                    with w.transaction():
                        w.execute("insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) "
                                  "values (%s, %s, %s, 'live-writer', 'web')", (COMPANY_1, cid, chatbot))
                        w.execute("insert into public.messages (company_id, conversation_id, sender_type, content) "
                                  "values (%s, %s, 'end_user', 'hello')", (COMPANY_1, cid))
                        w.execute("update public.conversations set status = 'closed' where company_id = %s and id = %s",
                                  (COMPANY_1, cid))
                    written.append(cid)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with _conn(db) as conn:
        expected_before = _snapshot_ids(conn)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.1)
        with _conn(db) as conn:
            result = call_job(conn, "archive", batch_size=5, as_of=FAR_FUTURE)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors
    assert result.status == "succeeded" and written
    with _conn(db) as conn:
        now = _snapshot_ids(conn)
        convs = now["conversations"]
        assert len(convs) == len(set(convs))
        assert sorted(convs) == sorted(expected_before["conversations"] + written)
        assert len(now["messages"]) == len(set(now["messages"]))
        assert len(now["messages"]) == len(expected_before["messages"]) + len(written)
        assert set(expected_before["messages"]) <= set(now["messages"])
        assert sorted(now["reactions"]) == sorted(expected_before["reactions"])


def test_a_run_killed_mid_batch_and_run_again_leaves_every_row_exactly_once(db: str) -> None:
    with _conn(db) as conn:
        load_demo(conn, companies=2, conversations=30, messages=3)
        expected = _snapshot_ids(conn)
        first = call_job(conn, "archive", batch_size=10, max_batches=2)
    assert first.status == "succeeded" and first.rows["conversations"] == 20

    blocker = _conn(db)
    blocker.execute("begin")
    blocker.execute("lock table archive.messages_archived in share mode")  # the next move waits here
    victim = _conn(db)
    pid = victim.info.backend_pid
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            call_job(victim, "archive", batch_size=10)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    with _conn(db) as watcher:
        for _ in range(200):  # wait until the batch has moved some rows and blocks mid-way
            row = watcher.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,)).fetchone()
            if row and row[0] == "Lock":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the archive run never blocked")
        watcher.execute("select pg_terminate_backend(%s)", (pid,))
    thread.join(timeout=30)
    blocker.execute("rollback")
    blocker.close()
    assert outcome, "the killed run must fail"

    with _conn(db) as conn:
        _assert_every_row_once(conn, expected)  # the killed batch rolled back as a whole
        assert conn.execute("select count(*) from archive.conversations_archived").fetchone() == (20,)
        again = call_job(conn, "archive", batch_size=10)
        assert again.rows["conversations"] == 40
        _assert_every_row_once(conn, expected)
        assert conn.execute("select count(*) from public.conversations").fetchone() == (0,)
        states = [r[0] for r in conn.execute("select status from private.job_runs order by id")]
    assert states == ["succeeded", "interrupted", "succeeded"]


# rule: one-job-run-at-a-time (docs/rules.md)
def _member(conn: psycopg.Connection, company: str, role: str) -> str:
    """A member of a demo company (auth identity + public.users row); its JWT claims."""
    auth_id = str(uuid.uuid4())
    email = f"{role}.{auth_id[:8]}@example.com"
    conn.execute("insert into auth.users (id, email, email_confirmed_at) values (%s, %s, now())", (auth_id, email))
    conn.execute("insert into public.users (company_id, auth_user_id, email, role) values (%s, %s, %s, %s)",
                 (company, auth_id, email, role))
    return json.dumps({"sub": auth_id, "role": "authenticated", "email": email})


# rule: jobs-never-wait-on-members (docs/rules.md)
@pytest.mark.parametrize("job", ["archive", "retention"])
@pytest.mark.parametrize("holder", ["supervisor's uncommitted reaction", "owner's uncommitted delete"])
def test_a_members_open_transaction_never_stalls_a_job_which_comes_back_to_its_rows(
        db: str, job: str, holder: str) -> None:
    with _conn(db) as conn:
        load_demo(conn, companies=2, conversations=6, messages=3)
        role = "supervisor" if holder.startswith("supervisor") else "owner"
        claims = _member(conn, COMPANY_1, role)
        row = conn.execute("""
            select m.conversation_id::text, m.id::text, r.id::text from public.messages m
              join public.message_reactions r on r.company_id = m.company_id and r.message_id = m.id
             where m.company_id = %s order by m.conversation_id limit 1""", (COMPANY_1,)).fetchone()
        assert row is not None
        held_conversation, message_id, reaction_id = row
        total = conn.execute("select count(*) from public.conversations").fetchone()
    as_of = FAR_FUTURE if job == "retention" else None
    with _conn(db) as member, _conn(db) as worker:
        member.execute("begin")
        member.execute("set local role authenticated")
        member.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
        if role == "supervisor":
            member.execute("insert into public.message_reactions (company_id, message_id, reaction)"
                           " values (%s, %s, 'thumbs_down')", (COMPANY_1, message_id))
        else:
            deleted = member.execute("select public.delete_rows('public.message_reactions', %s::jsonb)",
                                     (json.dumps([{"id": reaction_id}]),)).fetchone()
            assert deleted == (1,)
        # The member's transaction stays open while the job runs: the job must not wait.
        worker.execute("set statement_timeout = '20s'")
        result = call_job(worker, job, batch_size=4, as_of=as_of)
        assert result.status == "succeeded"
        left = worker.execute("select id::text from public.conversations").fetchall()
        assert left == [(held_conversation,)], "only the conversation whose row the member holds stays"
        member.execute("rollback")
        again = call_job(worker, job, batch_size=4, as_of=as_of)
        assert again.status == "succeeded"
        assert worker.execute("select count(*) from public.conversations").fetchone() == (0,), \
            "the next run comes back to the conversation the member held"
    assert total is not None and total[0] > 1


def test_two_runs_never_overlap(db: str) -> None:
    with _conn(db) as holder:
        holder.execute("select private.job_start('archive', '{}'::jsonb, false)")
        with _conn(db) as other, pytest.raises(JobLocked, match="is running"):
            call_job(other, "retention")  # archive, cold-export and retention share one lock
        with _conn(db) as other:
            assert call_job(other, "metrics").status == "succeeded"  # another lock



def test_two_runs_started_at_the_same_moment_never_both_run(db: str) -> None:
    first = _conn(db)
    first.execute("begin")
    first.execute("select private.job_start('archive', '{}'::jsonb, false)")  # not committed yet
    outcome: list[str] = []

    def second() -> None:
        with _conn(db) as conn:
            try:
                conn.execute("select private.job_start('retention', '{}'::jsonb, false)")
                outcome.append("started")
            except psycopg.Error as exc:
                outcome.append(f"{exc.sqlstate} {exc.diag.message_primary}")

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the second start must wait for the first one's commit"
    first.execute("commit")
    thread.join(timeout=30)
    first.close()
    assert len(outcome) == 1 and outcome[0].startswith("55P03 job retention cannot start: archive run"), outcome

def test_legal_hold_blocks_archival_cold_export_and_retention(db: str, tmp_path: Path) -> None:
    with _conn(db) as conn:
        load_demo(conn, companies=2, conversations=5, messages=2)
        held = conn.execute("select id::text from public.conversations where company_id = %s order by id limit 1",
                            (COMPANY_1,)).fetchone()[0]  # type: ignore[index]
        conn.execute("insert into public.legal_holds (company_id, conversation_id, reason, set_by) "
                     "values (%s, %s, 'case 1', 'legal')", (COMPANY_1, held))
        call_job(conn, "archive", as_of=FAR_FUTURE)
        assert conn.execute("select count(*) from public.conversations").fetchone() == (1,)
        assert conn.execute("select id::text from public.conversations").fetchone() == (held,)
        # archive it by hand (release, archive, hold again): then export and retention must skip it
        conn.execute("update public.legal_holds set released_at = now(), released_by = 'legal'")
        call_job(conn, "archive", as_of=FAR_FUTURE)
        conn.execute("insert into public.legal_holds (company_id, conversation_id, reason, set_by) "
                     "values (%s, %s, 'case 2', 'legal')", (COMPANY_1, held))
    run = cold_export(DatabaseTarget(db), tmp_path, as_of=FAR_FUTURE)
    assert run.job.rows["archive.conversations_archived"] == 9
    with _conn(db) as conn:
        assert conn.execute("select id::text from archive.conversations_archived").fetchall() == [(held,)]
        assert conn.execute("select count(*) from archive.messages_archived").fetchone() == (2,)
        retention = call_job(conn, "retention", as_of=FAR_FUTURE)
        assert "archive.conversations_archived" not in retention.rows
        assert conn.execute("select count(*) from archive.messages_archived").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from archive.conversations_archived")
        # released: retention takes it
        conn.execute("update public.legal_holds set released_at = now(), released_by = 'legal' "
                     "where released_at is null")
        call_job(conn, "retention", as_of=FAR_FUTURE)
        assert conn.execute("select count(*) from archive.conversations_archived").fetchone() == (0,)


def _archive_rows(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for table in ("conversations_archived", "messages_archived", "message_reactions_archived",
                  "hitl_escalations_archived", "knowledge_queries_archived", "integration_logs_archived",
                  "analytics_archived"):
        out[table] = conn.execute(f"select * from archive.{table} order by 1, 2, 3").fetchall()
    return out


# rule: cold-export-verified (docs/rules.md)
def test_export_delete_restore_returns_identical_rows(db: str, tmp_path: Path) -> None:
    with _conn(db) as conn:
        load_demo(conn, companies=2, conversations=12, messages=3)
        call_job(conn, "archive")
        original = _archive_rows(conn)
    assert all(original[t] for t in ("conversations_archived", "messages_archived", "analytics_archived"))
    run = cold_export(DatabaseTarget(db), tmp_path, as_of=FAR_FUTURE, batch_size=10)
    assert len(run.exports) == 4  # 12 conversations per company, 10 per export, one company per export
    with _conn(db) as conn:
        assert all(not rows for rows in _archive_rows(conn).values()), "exported rows are deleted"
        recorded = conn.execute("select count(*), sum((row_counts->>'archive.messages_archived')::int) "
                                "from private.cold_exports").fetchone()
    assert recorded == (4, len(original["messages_archived"]))
    for export in run.exports:
        manifest = json.loads((export.path / "manifest.json").read_text())
        assert set(manifest["tables"]) >= {"archive.conversations_archived", "archive.messages_archived"}
        assert verify_export(export.path) == {t: e["rows"] for t, e in manifest["tables"].items()}
        restore_export(DatabaseTarget(db), export.path)
    with _conn(db) as conn:
        assert _archive_rows(conn) == original
    with pytest.raises(ExportInvalid, match="already restored"):
        restore_export(DatabaseTarget(db), run.exports[0].path)


def test_a_cold_export_is_readable_by_its_owner_only(db: str, tmp_path: Path) -> None:
    """Cold files hold end users' messages: each export folder is 0700 and its files 0600,
    whatever the umask (the archive root is the operator's and keeps its mode)."""
    with _conn(db) as conn:
        load_demo(conn, companies=1, conversations=3, messages=2)
        call_job(conn, "archive")
    old = os.umask(0o022)
    try:
        run = cold_export(DatabaseTarget(db), tmp_path, as_of=FAR_FUTURE, batch_size=10)
    finally:
        os.umask(old)
    assert run.exports
    for export in run.exports:
        assert export.path.stat().st_mode & 0o777 == 0o700
        files = list(export.path.iterdir())
        assert len(files) > 3 and {f.stat().st_mode & 0o777 for f in files} == {0o600}


def test_an_altered_export_is_refused(db: str, tmp_path: Path) -> None:
    with _conn(db) as conn:
        load_demo(conn, companies=1, conversations=3, messages=2)
        call_job(conn, "archive")
    export = cold_export(DatabaseTarget(db), tmp_path, as_of=FAR_FUTURE).exports[0]
    target = export.path / "messages_archived.jsonl.gz"
    target.write_bytes(target.read_bytes()[:-5])
    with pytest.raises(ExportInvalid, match="sha256"):
        verify_export(export.path)
    with pytest.raises(ExportInvalid):
        restore_export(DatabaseTarget(db), export.path)


# rule: analytics-idempotent (docs/rules.md)
def test_analytics_rerun_gives_identical_numbers_and_picks_up_late_data(db: str) -> None:
    query = ("select company_id, chatbot_id, day, conversations_count, new_conversations_count, messages_count, "
             "end_user_messages_count, bot_messages_count, operator_messages_count, hitl_escalations, "
             "avg_processing_time_ms, positive_reactions, negative_reactions, knowledge_queries_count "
             "from public.analytics_daily order by 1, 2, 3")
    with _conn(db) as conn:
        load_demo(conn, companies=2, conversations=30, messages=3)
        common = {"day_from": datetime(2024, 6, 1).date(), "day_to": datetime(2024, 6, 3).date()}
        call_job(conn, "analytics", **common)  # type: ignore[arg-type]
        first = conn.execute(query).fetchall()
        call_job(conn, "analytics", **common)  # type: ignore[arg-type]
        assert conn.execute(query).fetchall() == first
        # late data: a message of 2024-06-01 arrives afterwards
        conn.execute("set session_replication_role = replica")
        conn.execute("insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content, "
                     "created_at) "
                     "select company_id, id, chatbot_id, 'end_user', 'late', timestamptz '2024-06-01 12:00:00+00' "
                     "from public.conversations where company_id = %s order by id limit 1", (COMPANY_1,))
        conn.execute("set session_replication_role = origin")
        call_job(conn, "analytics", **common)  # type: ignore[arg-type]
        late = conn.execute("select sum(messages_count) from public.analytics_daily "
                            "where day = '2024-06-01'").fetchone()
        assert late == (sum(r[5] for r in first if str(r[2]) == "2024-06-01") + 1,)
        # archival moves the sources; re-running the days gives the same numbers
        live_rows = conn.execute(query).fetchall()
        conn.execute("update public.subscription_plans set archive_after_days = 1")  # analytics rows would move too
        conn.execute("call public.job_archive(p_as_of => now())")
        conn.execute("insert into public.analytics_daily select company_id, chatbot_id, day, conversations_count, "
                     "new_conversations_count, messages_count, end_user_messages_count, bot_messages_count, "
                     "operator_messages_count, hitl_escalations, avg_processing_time_ms, positive_reactions, "
                     "negative_reactions, knowledge_queries_count, refreshed_at from archive.analytics_archived")
        conn.execute("delete from archive.analytics_archived")
        assert conn.execute("select count(*) from public.messages").fetchone() == (0,)
        call_job(conn, "analytics", **common)  # type: ignore[arg-type]
        assert conn.execute(query).fetchall() == live_rows


def test_metrics_job_samples_size_connections_growth_and_tenants(db: str) -> None:
    with _conn(db) as conn:
        load_demo(conn, companies=2, conversations=3, messages=2)
        call_job(conn, "metrics")
        call_job(conn, "metrics")
        names = {r[0] for r in conn.execute("select distinct metric_name from public.system_metrics")}
        tenants = conn.execute("select count(distinct labels->>'company_id') from public.system_metrics "
                               "where metric_name = 'tenant.rows'").fetchone()
    assert {"db.size_bytes", "db.connections", "table.total_bytes", "table.growth_bytes",
            "tenant.storage_bytes", "tenant.rows"} <= names
    assert tenants == (2,)


def test_cli_runs_jobs_with_a_summary_and_restores(db: str, tmp_path: Path) -> None:
    with _conn(db) as conn:
        load_demo(conn, companies=1, conversations=4, messages=2)
    runner = CliRunner()
    result = runner.invoke(cli, ["--database-url", db, "jobs", "run", "archive", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "(dry run)" in result.output
    result = runner.invoke(cli, ["--database-url", db, "jobs", "run", "archive", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "succeeded" and data["rows"]["messages"] == 8 and data["rows_per_second"] > 0
    result = runner.invoke(cli, ["--database-url", db, "jobs", "run", "cold-export", "--out", str(tmp_path),
                                 "--as-of", "2040-01-01", "--quiet"])
    assert result.exit_code == 0, result.output
    export = next(tmp_path.iterdir())
    result = runner.invoke(cli, ["--database-url", db, "archive", "restore", str(export)])
    assert result.exit_code == 0, result.output
    assert "restored" in result.output
    result = runner.invoke(cli, ["--database-url", db, "jobs", "run", "cold-export", "--quiet"])
    assert result.exit_code == 1 and "--out" in result.output and "Traceback" not in result.output
    # the test server may have pg_cron in its postgres database (a Debian server with it
    # preloaded) or not (the embedded one): either way the answer is exact, and what was
    # scheduled for this database is unscheduled again before it is dropped
    with _conn(with_database(db, "postgres")) as admin:
        server_has_cron = has_pg_cron(admin)
    result = runner.invoke(cli, ["--database-url", db, "jobs", "schedule"])
    try:
        if server_has_cron:
            assert result.exit_code == 0 and "neurant-archive@" in result.output, result.output
        else:
            assert result.exit_code == 1 and "pg_cron is not installed" in result.output
    finally:
        if server_has_cron:
            done = runner.invoke(cli, ["--database-url", db, "jobs", "unschedule"])
            assert done.exit_code == 0, done.output
    result = runner.invoke(cli, ["--database-url", db, "jobs", "schedule", "--print"])
    assert "neurant-db jobs run archive" in result.output
    result = runner.invoke(cli, ["--database-url", db, "jobs", "status", "--json"])
    assert [r["job"] for r in json.loads(result.output)][:2] == ["cold-export", "archive"]


def test_jobs_refuse_a_role_under_rls(db: str) -> None:
    from neurant_db.jobs import JobError

    with _conn(db) as conn:
        conn.execute("set role authenticated")
        with pytest.raises(JobError, match="permission denied"):
            call_job(conn, "archive")
        conn.execute("reset role")
        # a role that may execute the job but does not bypass RLS is refused by the job itself
        conn.execute("create role lifecycle_probe nologin")
        conn.execute("grant usage on schema private, archive to lifecycle_probe")
        conn.execute("grant execute on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz) "
                     "to lifecycle_probe")
        conn.execute("grant execute on all functions in schema private to lifecycle_probe")
        conn.execute("set role lifecycle_probe")
        try:
            with pytest.raises(JobError, match="bypasses row level security"):
                call_job(conn, "archive")
        finally:
            conn.execute("reset role")
            conn.execute("drop owned by lifecycle_probe")
            conn.execute("drop role lifecycle_probe")
