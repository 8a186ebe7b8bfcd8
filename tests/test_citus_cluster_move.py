"""Moving a filled database to a real Citus cluster (tests/citus_cluster.py) the way
docs/scale-out.md, "Moving an existing database", says: a vanilla database with the data
of several companies, its data dumped and loaded into a database migrated with profile
citus up to the distribution step, then the step distributing the filled tables; re-runs
and the rollback of the step after it (issue 19, deliverable 2)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.bench import LOAD_SQL
from neurant_db.citus_request import citus_request
from neurant_db.cli import cli
from neurant_db.render import render_all
from neurant_db.settings import Settings
from neurant_db.table_registry import load as load_registry
from neurant_db.testdb import commit_fixtures

from .citus_cluster import MAJOR, TEST_SHARD_COUNT, CitusCluster, distributed_database
from .debian_pg import debian_bin, debian_postgres

VANILLA = ["--embedding-dimensions", "8"]
CITUS = ["--profile", "citus", *VANILLA]
COMPANY_A = "aaaaaaaa-0000-0000-0000-000000000000"
COMPANY_B = "bbbbbbbb-0000-0000-0000-000000000000"
OWNER_A = "a1aaaaaa-0000-0000-0000-000000000001"
BENCH_COMPANY_1 = "00000000-0000-4000-9000-000000000001"
BENCH_OWNER_1 = "00000000-0000-4000-8000-00000000000b"  # auth id of company 1's owner (1 * 10 + 1)
# The dump of docs/scale-out.md: the package's schemas, without the seeded lookups (the
# migrations seed them on the cluster) and the vanilla-only visible-chatbots table.
DUMP = ["--data-only", "--no-owner", "--no-privileges", "--schema=public", "--schema=private",
        "--schema=auth", "--schema=archive", "--exclude-table=public.subscription_plans",
        "--exclude-table=public.chatbot_templates", "--exclude-table=private.chatbot_visibility"]
MEMBERSHIPS = ("insert into private.memberships (auth_user_id, company_id, id, role, is_active) "
               "select auth_user_id, company_id, id, role, is_active from public.users")


def _ok(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.output


SEEDED = {"public.subscription_plans", "public.chatbot_templates"}  # seeded by the migrations on both


def _fingerprints(url: str, tables: list[str], leave_out: str = "") -> dict[str, tuple[int, str]]:
    """Per table: its row count and a hash of its rows (as JSON, so column order does not
    matter; `leave_out`: `- 'key'` of keys not compared), read through the coordinator."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in tables:
            rows = sorted(r[0] for r in conn.execute(f"select (to_jsonb(t) {leave_out})::text from {table} t"))
            out[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return out


QUALIFIED = "(select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace " \
    "where c.oid = {})"


def _placements(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {r[0]: r[1] for r in conn.execute(
            f"select {QUALIFIED.format('logicalrelid')}, case when partmethod = 'h' then 'distributed' "
            "when repmodel = 't' then 'reference' else 'local' end from pg_dist_partition")}


def _read_as(url: str, sub: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn, \
            citus_request(conn, {"sub": sub, "role": "authenticated"}) as r:
        return r.execute(sql).fetchall()


@pytest.fixture(scope="module")
def vanilla_db(citus_cluster: CitusCluster) -> Iterator[str]:
    """The database being moved, on a server of its own (Debian PostgreSQL 15, the cluster's
    major, without Citus), migrated with profile vanilla and filled: the test fixtures'
    companies A and B (every table, written through the triggers) and four bulk-loaded
    companies of the bench's data set."""
    with debian_postgres(MAJOR) as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("create database app")
        url = server.url("app")
        _ok(["--database-url", url, *VANILLA, "migrate"])
        commit_fixtures(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(LOAD_SQL % {"companies": 4, "conversations": 10, "messages": 3})
        yield url


def test_a_filled_vanilla_database_moved_to_the_cluster_keeps_every_row_and_the_tenant_isolation(
        citus_cluster: CitusCluster, vanilla_db: str, tmp_path: Path) -> None:
    migrations = render_all(Settings(profile="citus", embedding_dimensions=8))
    step = next(m for m in migrations if m.source.name == "citus_distribution")
    before_step = max(m.version for m in migrations if m.version < step.version)
    # Tables a migration after the step creates (registry `since`): their own migration
    # places them on the cluster, so their rows are loaded once `migrate` has run to the end.
    late = sorted(e.name for e in load_registry().entries if e.since is not None and e.since > step.version)
    dump, late_dump = tmp_path / "data.sql", tmp_path / "late.sql"
    for args, path in (([*DUMP, *(f"--exclude-table={t}" for t in late)], dump),
                       ([*DUMP[:3], *(f"--table={t}" for t in late)], late_dump)):
        done = subprocess.run([str(debian_bin(MAJOR) / "pg_dump"), *args, "-f", str(path), "-d", vanilla_db],
                              capture_output=True, text=True, check=False, timeout=300)
        assert done.returncode == 0, done.stderr

    def load_late() -> None:
        loaded = subprocess.run([str(debian_bin(MAJOR) / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                 "-f", str(late_dump), "-d", url], capture_output=True, text=True, check=False,
                                timeout=300)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
    with distributed_database(citus_cluster, TEST_SHARD_COUNT) as url:
        # 1. The schema of profile citus, but the distribution step.
        _ok(["--database-url", url, *CITUS, "migrate", "--to", str(before_step)])
        # 2. The data, triggers off; the membership copy from users.
        load = subprocess.run([str(debian_bin(MAJOR) / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-f", str(dump), "-d", url], capture_output=True, text=True, check=False,
                              timeout=300, env={**os.environ, "PGOPTIONS": "-c session_replication_role=replica"})
        assert load.returncode == 0, load.stderr[-3000:]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(MEMBERSHIPS)
        # 3. The distribution step on the filled tables, the migrations after it, their tables' rows.
        _ok(["--database-url", url, *CITUS, "migrate"])
        load_late()
        with psycopg.connect(url) as conn:
            layout = {r[0]: r[1] for r in conn.execute(
                f"select {QUALIFIED.format('relation')}, placement from private.citus_layout")}
        assert _placements(url) == layout
        assert len(layout) == sum(1 for e in load_registry().entries if e.citus is not None)
        moved = sorted(set(layout) - {"private.memberships", "private.citus_layout"} - SEEDED)
        source = _fingerprints(vanilla_db, moved)
        assert all(source[t][0] > 0 for t in ("public.companies", "public.users", "public.messages",
                                              "public.documents", "public.audit_logs", "archive.messages_archived"))
        assert source["public.companies"][0] == 6
        # Every row of every table as it was (no trigger re-ran on the copy into the shards:
        # no audit row, counter or usage added), the copy equal to users.
        assert _fingerprints(url, moved) == source
        # the seeded lookups: the same rows but their time stamps (seeded on each side)
        stamps = "- 'created_at' - 'updated_at'"
        assert _fingerprints(url, sorted(SEEDED), stamps) == _fingerprints(vanilla_db, sorted(SEEDED), stamps)
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "select count(*) from (select auth_user_id, company_id, id, role, is_active from public.users "
                "except select auth_user_id, company_id, id, role, is_active from private.memberships) d"
            ).fetchone() == (0,)

        # Isolation after the move: owner A reads A's rows only, all of them; B's rows are
        # out of its reach for writes; a bulk-loaded company's owner reads its own.
        with psycopg.connect(vanilla_db) as conn:
            a_messages = conn.execute("select count(*) from public.messages where company_id = %s",
                                      (COMPANY_A,)).fetchone()
        for table in ("public.conversations", "public.messages", "public.users", "public.documents"):
            seen = _read_as(url, OWNER_A, f"select company_id::text, count(*) from {table} "
                            f"where company_id in ('{COMPANY_A}', '{COMPANY_B}') group by 1")
            assert [c for c, _n in seen] == [COMPANY_A], (table, seen)
        assert _read_as(url, OWNER_A, f"select count(*) from public.messages where company_id = '{COMPANY_A}'") \
            == [a_messages]
        assert _read_as(url, OWNER_A, "update public.conversations set status = 'closed' "
                        f"where company_id = '{COMPANY_B}' returning id") == []
        assert _read_as(url, BENCH_OWNER_1, "select count(*) from public.conversations "
                        f"where company_id = '{BENCH_COMPANY_1}'") == [(10,)]

        # Re-runs: nothing to apply; the step rolled back with everything after it (the shard
        # policies, the later tables; the step's tables stay distributed, no row moves) and
        # applied again; every row still as it was.
        assert "nothing to apply" in _ok(["--database-url", url, *CITUS, "migrate"])
        _ok(["--database-url", url, *CITUS, "rollback", "--to", str(before_step), "--yes"])
        assert set(_placements(url)) == set(layout) - {"private.citus_layout", *late}
        kept = [t for t in moved if t not in late]
        assert _fingerprints(url, kept) == {t: source[t] for t in kept}
        _ok(["--database-url", url, *CITUS, "migrate"])
        load_late()
        assert _placements(url) == layout
        # Step 4 of the move: the local copies left in the coordinator's shell tables freed (the
        # tables' refuse_truncate triggers would refuse that local TRUNCATE too: replica role).
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("set session_replication_role = replica")
            conn.execute("select truncate_local_data_after_distributing_table(relation) from private.citus_layout")
        assert _fingerprints(url, moved) == source
        plan = json.loads(_ok(["--database-url", url, *CITUS, "citus", "plan", "--json"]))
        assert all(r["distributed"] and not r["conflict"] for r in plan["tables"])
