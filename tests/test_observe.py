"""Per-tenant observability (docs/operations.md, "Per-tenant observability: neurant-db top"):
the metrics job's per-tenant storage and growth (functions/4300), `neurant-db top`'s rankings,
index usage, the session label of docs/services.md section 12 (directly, through PgBouncer
in transaction mode, and the PostgREST pre-request hook), replication lag and WAL-archive
age on a real primary and streaming standby (Debian PostgreSQL 15)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict

from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget
from neurant_db.lifecycle_demo import load_demo
from neurant_db.migrate import migrate
from neurant_db.observe import collect_top, parse_label
from neurant_db.render import render_all
from neurant_db.testdb import TestDatabase, test_settings

from .bouncer import run_pgbouncer, wait_for
from .conftest import scratch_database
from .debian_pg import debian_bin, debian_postgres, ensure_pg15_pgvector, missing_server_reason, server_user
from .test_service_guide import (
    COMPANY_A,
    OWNER_A_AUTH,
    bind,
    claims,
    guide_text,
    migrated_with_fixtures,
    sql_block,
    statements,
)

C1, C2, C3 = (f"00000000-0000-4000-9000-{n:012x}" for n in (1, 2, 3))


def company(n: int) -> str:
    return f"00000000-0000-4000-9000-{n:012x}"


@pytest.fixture(scope="module")
def template(neurant_server: TestDatabase) -> Iterator[str]:
    """A migrated database holding three companies of different sizes (20, 40 and 30
    conversations of 10 messages): the template of each test's database."""
    with scratch_database(neurant_server.url) as url:
        settings = test_settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        with psycopg.connect(url, autocommit=True) as conn:
            for first, conversations in ((1, 20), (2, 40), (3, 30)):
                load_demo(conn, companies=1, conversations=conversations, messages=10, first=first)
        yield url


@pytest.fixture
def db(neurant_server: TestDatabase, template: str) -> Iterator[str]:
    name = str(conninfo_to_dict(template)["dbname"])
    with psycopg.connect(neurant_server.url, autocommit=True) as conn:
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,))
    with scratch_database(neurant_server.url, template=name) as url:
        yield url


def run_cli(url: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def top_json(url: str, *args: str) -> dict[str, Any]:
    out = run_cli(url, "top", "--json", "--limit", "100", *args)
    return json.loads(out[out.index("{"):])  # type: ignore[no-any-return]


def samples(conn: psycopg.Connection, metric: str) -> list[dict[str, float]]:
    """One {company_id: value} per run of the metrics job, oldest first."""
    rows = conn.execute("select recorded_at, labels->>'company_id', sum(value) from public.system_metrics "
                        "where metric_name = %s group by 1, 2 order by 1", (metric,)).fetchall()
    runs: dict[Any, dict[str, float]] = {}
    for at, cid, value in rows:
        runs.setdefault(at, {})[cid] = value
    return list(runs.values())


def grow_company(conn: psycopg.Connection, cid: str, size: int = 4000) -> None:
    """Make every message of `cid` `size` bytes of incompressible text."""
    conn.execute("update public.messages set content = (select string_agg(md5(g::text || random()::text), '') "
                 "from generate_series(1, %s / 32) g where g > 0 and id is not null) where company_id = %s",
                 (size, cid))


# ---------------------------------------------------------------------------
# The metrics job: storage per tenant in bytes, and its growth
# ---------------------------------------------------------------------------

def test_the_metrics_job_writes_each_tenants_row_bytes_storage_and_growth_between_runs(db: str) -> None:
    run_cli(db, "jobs", "run", "metrics")
    with psycopg.connect(db, autocommit=True) as conn:
        grow_company(conn, C2)
    run_cli(db, "jobs", "run", "metrics")
    with psycopg.connect(db, autocommit=True) as conn:
        total = samples(conn, "tenant.total_bytes")
        growth = samples(conn, "tenant.growth_bytes")
        assert len(total) == 2 and set(total[0]) == {C1, C2, C3}
        assert growth[0] == {C1: 0, C2: 0, C3: 0}, "the first sample has no growth"
        assert growth[1][C2] == pytest.approx(total[1][C2] - total[0][C2])
        assert growth[1][C2] > 400 * 3000, "company 2's 400 messages each grew by ~4 kB"
        # company 1 is unchanged: its row bytes are the same, its share of the grown tables shrinks
        row_bytes = samples(conn, "tenant.row_bytes")
        assert row_bytes[1][C1] == row_bytes[0][C1]
        # row bytes are the sum of pg_column_size of the rows, table by table
        ours = conn.execute("select value from public.system_metrics where metric_name = 'tenant.row_bytes' "
                            "and labels = jsonb_build_object('company_id', %s::text, 'table', 'public.messages') "
                            "order by recorded_at desc limit 1", (C2,)).fetchone()
        theirs = conn.execute("select sum(pg_column_size(m.*)) from public.messages m where company_id = %s",
                              (C2,)).fetchone()
        assert ours is not None and theirs is not None and ours[0] == theirs[0]
        # the shares add up to the tables' on-disk size
        tables = conn.execute(
            "select distinct labels->>'table' from public.system_metrics where metric_name = 'tenant.row_bytes'"
        ).fetchall()
        disk = conn.execute("select sum(pg_total_relation_size(t::regclass)) from unnest(%s::text[]) t",
                            ([t for (t,) in tables],)).fetchone()
        assert disk is not None and sum(total[1].values()) == pytest.approx(float(disk[0]), rel=1e-6)


def test_the_metrics_job_runs_as_service_role(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("set role service_role")
        conn.execute("call public.job_metrics()")
        n = conn.execute("select count(*) from public.system_metrics "
                         "where metric_name = 'tenant.total_bytes'").fetchone()
        assert n == (3,)


# ---------------------------------------------------------------------------
# neurant-db top
# ---------------------------------------------------------------------------

def test_top_ranks_tenants_by_messages_and_by_storage(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        grow_company(conn, C1)  # the fewest messages, the most bytes
    run_cli(db, "jobs", "run", "metrics")
    report = top_json(db)
    assert [t["company_id"] for t in report["by_messages"]] == [C2, C3, C1]
    assert [t["messages"] for t in report["by_messages"]] == [400, 300, 200]
    assert [t["company_id"] for t in report["by_storage"]] == [C1, C2, C3]
    assert report["by_storage"][0]["storage_bytes"] > 200 * 4000


def test_top_without_a_sample_says_to_run_the_metrics_job(db: str) -> None:
    report = top_json(db)
    assert report["by_storage"] == [] and any("jobs run metrics" in n for n in report["notes"])


def test_top_gives_up_at_its_statement_timeout(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as locker, psycopg.connect(db, autocommit=True) as conn:
        locker.execute("begin")
        locker.execute("lock table public.system_metrics in access exclusive mode")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            collect_top(conn, statement_timeout_ms=300)
        assert time.monotonic() - started < 30, "bounded by the timeout, not by the lock"
        locker.execute("rollback")
        assert conn.execute("select current_setting('statement_timeout'), current_setting('transaction_read_only')"
                            ).fetchone() == ("0", "off"), "the settings were local to top's transaction"


def test_top_prints_every_section_as_tables(db: str) -> None:
    run_cli(db, "jobs", "run", "metrics")
    out = run_cli(db, "top")
    for title in ("Top tenants by messages", "Top tenants by storage", "Top tenants by query load",
                  "Sessions by label", "Unused indexes", "Duplicate indexes", "Replication", "WAL archive"):
        assert title in out
    assert C2 in out


# ---------------------------------------------------------------------------
# Index usage
# ---------------------------------------------------------------------------

def test_the_migrated_schema_has_no_duplicate_index(db: str) -> None:
    assert top_json(db)["duplicate_indexes"] == []


def test_top_finds_a_duplicate_index_and_an_unused_one_but_not_a_used_one(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("create index observe_dup_idx on public.conversations (company_id)")  # prefix of the pkey
        conn.execute("create index observe_used_idx on public.messages (company_id, sender_type)")
        conn.execute("set enable_seqscan = off")
        conn.execute("select count(*) from public.messages where company_id = %s and sender_type = 'bot'", (C1,))
        plan = conn.execute("explain select count(*) from public.messages where company_id = %s "
                            "and sender_type = 'bot'", (C1,)).fetchall()
        assert "observe_used_idx" in str(plan)
        conn.execute("select pg_stat_force_next_flush()")
    report = top_json(db, "--limit", "1000")
    dups = [(d["index"], d["covered_by"], d["columns"]) for d in report["duplicate_indexes"]]
    assert dups == [("public.observe_dup_idx", ["public.conversations_chatbot_last_message_idx",
                                                "public.conversations_id_chatbot_key", "public.conversations_pkey"],
                     "company_id")]
    unused = {i["index"] for i in report["unused_indexes"]}
    assert "public.observe_dup_idx" in unused
    assert "public.observe_used_idx" not in unused
    assert not any(i["index"].endswith("_pkey") for i in report["unused_indexes"]), "a key's index is needed"


# ---------------------------------------------------------------------------
# Session labels (docs/services.md section 12)
# ---------------------------------------------------------------------------

def test_parse_label_accepts_service_colon_company_only() -> None:
    assert parse_label(f"bot-engine:{C1.upper()}") == ("bot-engine", C1)
    assert parse_label("bot-engine") == (None, None)
    assert parse_label("postgrest:anon") == (None, None)
    assert parse_label(None) == (None, None)


def labelled(url: str, service: str, cid: str) -> psycopg.Connection:
    """A connection in an open transaction labelled by the guide's `session-label` block."""
    conn = psycopg.connect(url, autocommit=True)
    stmts = statements(sql_block("session-label"))
    assert stmts[0].lower() == "begin" and stmts[-1].lower() == "commit"
    for stmt in stmts[:-1]:
        conn.execute(*bind(stmt, {"service": service, "company_id": cid}))
    return conn


def test_top_groups_live_sessions_by_their_label_and_ranks_tenants_by_load(db: str) -> None:
    a1, a2, b1 = labelled(db, "bot-engine", C1), labelled(db, "ingest", C1), labelled(db, "bot-engine", C2)
    sleeper = threading.Thread(target=lambda: a1.execute("select pg_sleep(2)"))
    try:
        sleeper.start()
        time.sleep(0.5)
        report = top_json(db)
        groups = {g["label"]: g for g in report["sessions"]}
        assert groups[f"bot-engine:{C1}"]["active"] == 1
        assert groups[f"ingest:{C1}"]["idle_in_transaction"] == 1
        assert groups[f"bot-engine:{C2}"]["company_id"] == C2
        load = [(t["company_id"], t["sessions"], t["active"]) for t in report["by_load"]]
        assert load == [(C1, 2, 1), (C2, 1, 0)]
        assert report["by_load"][0]["name"] == "lifecycle company 1"
    finally:
        sleeper.join()
        for conn in (a1, a2, b1):
            conn.execute("commit")
    # the label ends with the transaction
    after = {g["label"] for g in top_json(db)["sessions"]}
    assert not any(C1 in label or C2 in label for label in after)
    for conn in (a1, a2, b1):
        conn.close()


def test_through_pgbouncer_in_transaction_mode_the_label_ends_with_the_transaction(
        db: str, tmp_path: Path) -> None:
    server = conninfo_to_dict(db)
    ini = re.search(r"```ini\n(?P<body>.*?)```", guide_text(), re.S)
    assert ini is not None
    body = ini["body"].strip()[len("[pgbouncer]\n"):]
    target = f"host={server.get('host', 'localhost')} port={server.get('port', 5432)} dbname={server['dbname']} " \
             f"user={server.get('user', 'postgres')}"
    with run_pgbouncer(tmp_path / "pgbouncer", db, f"pooled = {target}",
                       body + "\nauth_type = any\ndefault_pool_size = 1\nmax_client_conn = 10\n") as port:
        url = f"host=127.0.0.1 port={port} dbname=pooled user=anyone"
        wait_for(url)
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as first, \
                psycopg.connect(url, autocommit=True, prepare_threshold=None) as second:
            stmts = statements(sql_block("session-label"))
            for stmt in stmts[:-1]:
                first.execute(*bind(stmt, {"service": "bot-engine", "company_id": C3}))
            pid = first.execute("select pg_backend_pid()").fetchone()
            labels = {g["label"]: g for g in top_json(db)["sessions"]}
            assert labels[f"bot-engine:{C3}"]["sessions"] == 1, "the label is seen through the pooler"
            first.execute(stmts[-1])
            row = second.execute("select pg_backend_pid(), current_setting('application_name')").fetchone()
            assert row is not None and pid is not None and row[0] == pid[0], "one server connection for both"
            assert C3 not in row[1], "the next client of the server connection does not inherit the label"


def test_the_postgrest_pre_request_hook_labels_a_members_request_with_their_company(
        neurant_server: TestDatabase) -> None:
    with migrated_with_fixtures(neurant_server.url) as (url, _settings), \
            psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql_block("postgrest-label"))  # one simple query: the block holds a $$ body
        with psycopg.connect(url, autocommit=True) as api:
            def request(role: str, jwt: str) -> str:
                api.execute("begin")
                api.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                            (role, jwt))
                api.execute("select request_hooks.label_request()")
                row = admin.execute("select application_name from pg_stat_activity where pid = %s",
                                    (api.info.backend_pid,)).fetchone()
                api.execute("commit")
                assert row is not None
                return str(row[0])

            assert request("authenticated", claims(OWNER_A_AUTH, "owner.a@example.com")) == f"postgrest:{COMPANY_A}"
            assert request("anon", json.dumps({"role": "anon"})) == "postgrest:anon"
            assert request("service_role", json.dumps({"role": "service_role"})) == "postgrest:service_role"
            after = admin.execute("select application_name from pg_stat_activity where pid = %s",
                                  (api.info.backend_pid,)).fetchone()
            assert after is not None and "postgrest" not in after[0]


# ---------------------------------------------------------------------------
# Replication lag and WAL-archive age: a Debian PostgreSQL 15 primary with a WAL
# archive and a streaming standby made with pg_basebackup
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def primary_and_standby() -> Iterator[tuple[str, str]]:
    reason = missing_server_reason(15) or ensure_pg15_pgvector()
    if reason:
        pytest.skip(reason)
    archive = Path(f"/tmp/neurant-archive-{secrets.token_hex(4)}")
    archive.mkdir()
    user = server_user()
    if user is not None:
        subprocess.run(["chown", user, str(archive)], check=True)
    conf = {"wal_level": "replica", "max_wal_senders": "4", "archive_mode": "on",
            "archive_command": f"'cp %p {archive}/%f'", "archive_timeout": "60"}
    with debian_postgres(15, conf=conf) as primary:
        standby_data = primary.data.parent / "standby"
        port = primary.port + 1

        def run(*args: str) -> None:
            subprocess.run(args, capture_output=True, text=True, user=user, timeout=120, check=True)

        run(str(debian_bin(15) / "pg_basebackup"), "-h", str(primary.socket_dir), "-p", str(primary.port),
            "-U", "postgres", "-D", str(standby_data), "-R", "-X", "stream", "--no-sync", "-c", "fast")
        with (standby_data / "postgresql.auto.conf").open("a", encoding="utf-8") as f:  # after -R's line
            f.write(f"port = {port}\narchive_mode = off\nhot_standby = on\n"
                    f"primary_conninfo = 'host={primary.socket_dir} port={primary.port} user=postgres "
                    f"application_name=observe_standby'\n")
        run(str(debian_bin(15) / "pg_ctl"), "-D", str(standby_data), "-l", str(primary.data.parent / "standby.log"),
            "-w", "-t", "60", "start")
        try:
            url = primary.url("postgres")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("create database observe")
            yield primary.url("observe"), primary.url("observe").replace(f"port={primary.port}", f"port={port}")
        finally:
            subprocess.run([str(debian_bin(15) / "pg_ctl"), "-D", str(standby_data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, user=user, timeout=60, check=False)
            subprocess.run(["rm", "-rf", str(archive)], check=False)


def test_metrics_and_top_report_replication_lag_and_archive_age_on_a_primary_and_its_standby(
        primary_and_standby: tuple[str, str]) -> None:
    primary, standby = primary_and_standby
    settings = test_settings()
    migrate(DatabaseTarget(primary), render_all(settings), settings)
    with psycopg.connect(primary, autocommit=True) as conn:
        load_demo(conn, companies=1, conversations=5, messages=2)
        conn.execute("select pg_switch_wal()")
        for _ in range(100):
            row = conn.execute("select archived_count from pg_stat_archiver").fetchone()
            streaming = conn.execute("select count(*) from pg_stat_replication where state = 'streaming'").fetchone()
            if row and row[0] > 0 and streaming == (1,):
                break
            time.sleep(0.1)
    run_cli(primary, "jobs", "run", "metrics")
    with psycopg.connect(primary, autocommit=True) as conn:
        names = {(n, lbl.get("standby")) for n, lbl in conn.execute(
            "select metric_name, labels from public.system_metrics where metric_name like 'replication.%' "
            "or metric_name like 'wal.%'").fetchall()}
        assert ("replication.lag_bytes", "observe_standby") in names
        assert ("replication.replay_lag_seconds", "observe_standby") in names
        assert ("wal.archive_age_seconds", None) in names
        lsn = conn.execute("select pg_current_wal_lsn()").fetchone()
    report = top_json(primary)
    assert [r["standby"] for r in report["replication"]] == ["observe_standby"]
    assert report["archiver"]["archive_mode"] == "on" and report["archiver"]["archived_count"] >= 1
    assert report["archiver"]["age_seconds"] >= 0
    # the standby: read-only, top reads its replay delay once it has replayed the job's sample
    with psycopg.connect(standby, autocommit=True) as conn:
        for _ in range(100):
            caught = conn.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                  (lsn[0] if lsn else None,)).fetchone()
            if caught == (True,):
                break
            time.sleep(0.1)
    on_standby = top_json(standby)
    assert on_standby["in_recovery"] is True
    assert on_standby["standby"]["receiver_status"] == "streaming"
    assert on_standby["standby"]["replay_delay_seconds"] is not None
    assert on_standby["by_storage"], "the standby shows the samples written on the primary"
