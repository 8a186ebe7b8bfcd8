"""Profile citus on a real Citus cluster (Citus 13.2.2 on Debian PostgreSQL 15, a
coordinator and two workers on loopback: tests/citus_cluster.py): the distribution step,
its re-runs and rollback, and doctor (issue 19)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.citus_testdb import CitusNodes, cluster_nodes
from neurant_db.cli import cli
from neurant_db.table_registry import load

from .citus_cluster import TEST_SHARD_COUNT, TEST_SHARDS, CitusCluster, copy_of, distributed_database, skip_or_fail

ARGS = ["--profile", "citus", "--embedding-dimensions", "8"]


@pytest.fixture
def distributed_db(citus_cluster: CitusCluster) -> Iterator[str]:
    """A fresh database with the citus extension on every node, dropped on all afterwards."""
    with distributed_database(citus_cluster, TEST_SHARD_COUNT) as url:
        yield url


def _placements(url: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            select logicalrelid::regclass::text,
                   case when partmethod = 'h' then 'distributed'
                        when repmodel = 't' then 'reference' else 'local' end,
                   case when partmethod = 'h' then column_to_column_name(logicalrelid, partkey) end
              from pg_dist_partition""").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _layout(url: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select relation::text, placement, distribution_column::text "
                            "from private.citus_layout").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _foreign_keys(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return {(r[0], r[1]) for r in conn.execute(
            "select conrelid::regclass::text, conname::text from pg_constraint where contype = 'f' "
            "and connamespace::regnamespace::text in ('public', 'private', 'archive', 'auth') "
            # the coordinator holds placements of the reference tables: their shards' keys
            "and (to_regclass('pg_dist_shard') is null or conrelid::regclass::text not in "
            "(select shard_name(logicalrelid, shardid) from pg_dist_shard))")}


def test_a_missing_cluster_is_one_skip_line_locally_and_a_failure_under_ci(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^Citus cluster suite not run: no vendored Citus"):
        skip_or_fail("no vendored Citus")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: the cluster suite must run in CI"):
        skip_or_fail("no vendored Citus")


def test_the_cluster_has_a_coordinator_and_two_workers_with_citus_13(citus_cluster: CitusCluster) -> None:
    nodes = cluster_nodes(citus_cluster.url())
    assert nodes == CitusNodes(("127.0.0.1", citus_cluster.ports["coordinator"]),
                               [("127.0.0.1", p) for p in citus_cluster.worker_ports])
    with psycopg.connect(citus_cluster.url()) as conn:
        row = conn.execute("select extversion from pg_extension where extname = 'citus'").fetchone()
    assert row is not None and row[0].startswith("13.")


def test_migrate_places_every_table_as_the_layout_says_with_every_foreign_key_kept(
        distributed_db: str) -> None:
    # Failure 1 of issue 19: auth.users as a reference table turned the tables linked to it
    # into Citus local tables (then "is a shard relation", "already a local table", the
    # refused foreign keys, and the tenant guard's regclass WHEN on the workers).
    runner = CliRunner()
    before = runner.invoke(cli, ["--database-url", distributed_db, *ARGS, "migrate", "--to", "3700"])
    assert before.exit_code == 0, before.output
    keys = _foreign_keys(distributed_db)
    assert len(keys) > 50 and not _placements(distributed_db)
    result = runner.invoke(cli, ["--database-url", distributed_db, *ARGS, "migrate"])
    assert result.exit_code == 0, result.output
    layout = _layout(distributed_db)
    assert len(layout) == len(load().on("citus"))  # 4200 places the erasure ledger itself
    assert _placements(distributed_db) == layout
    # every key of the released schema kept, plus those of the tables added after it (4200)
    keys |= {("private.erasure_ledger", "erasure_ledger_company_fkey")}
    assert _foreign_keys(distributed_db) == keys

    # Re-runs: nothing to apply; the distribution step (and the shard policies after it,
    # seeds/3995, and the migrations after them) rolled back and applied again skips every
    # table already placed, and keeps every foreign key.
    again = runner.invoke(cli, ["--database-url", distributed_db, *ARGS, "migrate"])
    assert again.exit_code == 0 and "nothing to apply" in again.output, again.output
    back = runner.invoke(cli, ["--database-url", distributed_db, *ARGS, "rollback", "--to", "3700", "--yes"])
    assert back.exit_code == 0, back.output
    redo = runner.invoke(cli, ["--database-url", distributed_db, *ARGS, "migrate"])
    assert redo.exit_code == 0, redo.output
    assert _placements(distributed_db) == _layout(distributed_db) == layout
    assert _foreign_keys(distributed_db) == keys

    plan = runner.invoke(cli, ["--database-url", distributed_db, *ARGS, "citus", "plan", "--json"])
    assert plan.exit_code == 0, plan.output
    assert all(r["distributed"] and not r["conflict"] for r in json.loads(plan.output)["tables"])

    # Rollback to 0 on the cluster (each statement of a migration sent alone, sequential
    # shard DDL, the unsafe-triggers setting kept while Citus holds tables): nothing left.
    # (Migrating again after it is the distribution step from 3700 above.)
    down = runner.invoke(cli, ["--database-url", distributed_db, *ARGS, "rollback", "--to", "0", "--yes"])
    assert down.exit_code == 0, down.output
    assert _placements(distributed_db) == {} and _foreign_keys(distributed_db) == set()


def test_doctor_on_the_cluster_reports_no_error_and_ignores_citus_own_views(
        citus_cluster: CitusCluster, citus_migrated: str) -> None:
    # Failure 2 of issue 19: public.citus_tables / citus_schemas (Citus's views) were errors.
    with copy_of(citus_cluster, citus_migrated) as url:
        doctor = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "doctor", "--json"])
        findings = json.loads(doctor.output)
        assert [(f["check"], f["object"]) for f in findings if f["level"] == "error"] == []
        with psycopg.connect(url) as conn:
            assert conn.execute("select to_regclass('public.citus_tables') is not null").fetchone() == (True,)


def _databases(cluster: CitusCluster) -> dict[str, set[str]]:
    found = {}
    for node in cluster.ports:
        with psycopg.connect(cluster.url(node)) as conn:
            found[node] = {r[0] for r in conn.execute("select datname from pg_database")}
    return found


def test_neurant_db_test_with_profile_citus_runs_on_a_distributed_database_and_drops_it_everywhere(
        citus_cluster: CitusCluster, tmp_path: Path) -> None:
    # `neurant-db --profile citus test` against the coordinator: the throwaway database is
    # created on every node with the citus extension, migrated (so distributed), runs the
    # suites there (here one pgTAP file checking that), and is dropped on every node.
    root = tmp_path / "sql"
    project = Path(__file__).parent.parent
    for folder in ("schema", "functions", "policies", "indexes", "seeds"):
        shutil.copytree(project / folder, root / folder)
    shutil.copytree(project / "tests" / "isolation", root / "tests" / "isolation")
    (root / "tests" / "fixtures").mkdir(parents=True)
    (root / "tests" / "pgtap").mkdir()
    (root / "tests" / "pgtap" / "0001_distributed.sql").write_text(
        "select plan(3);\n"
        "select is((select count(*)::int from pg_dist_node where noderole = 'primary'), 3, "
        "'the throwaway database knows the coordinator and both workers');\n"
        "select is((select count(*)::int from pg_dist_partition), "
        "(select count(*)::int from private.citus_layout), 'every table of the layout is placed');\n"
        "select is((select partmethod::text from pg_dist_partition where logicalrelid = 'public.messages'::regclass), "
        "'h', 'messages is hash-distributed');\n"
        "select * from finish();\n")
    before = _databases(citus_cluster)
    exe = shutil.which("neurant-db") or str(Path(sys.executable).parent / "neurant-db")
    env = {**os.environ, "NEURANT_SQL_ROOT": str(root), **TEST_SHARDS}
    env.pop("NEURANT_TEST_PROFILE", None)
    result = subprocess.run(
        [exe, "--profile", "citus", "--embedding-dimensions", "8", "--database-url", citus_cluster.url(),
         "test", "-k", "distributed"],
        capture_output=True, text=True, check=False, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout, result.stdout[-2000:]
    assert _databases(citus_cluster) == before
