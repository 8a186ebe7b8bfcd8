"""`neurant-db --profile citus preflight` on a real Citus cluster (tests/citus_cluster.py):
every worker is checked through the coordinator (the database with its citus extension, the
PostgreSQL and Citus versions, the extensions the migrations create, the roles they grant to),
and each problem names the node and what to run there (issue 19: `migrate` failed on the
workers with 42704 when anon and authenticated existed on the coordinator only).

The test starts a cluster of its own: it creates roles on one node only, which the shared
cluster of the other tests must not see."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli

from .citus_cluster import (
    TEST_SHARD_COUNT,
    CitusCluster,
    citus_cluster,
    distributed_database,
    missing_reason,
    skip_or_fail,
)

ARGS = ["--profile", "citus", "--embedding-dimensions", "8"]


@pytest.fixture
def own_cluster() -> Iterator[CitusCluster]:
    reason = missing_reason()
    if reason:
        skip_or_fail(reason)
    with citus_cluster() as cluster:
        yield cluster


def test_preflight_names_each_worker_missing_a_role_of_the_coordinator_and_the_fix_lets_migrate_run(
        own_cluster: CitusCluster) -> None:
    c = own_cluster
    with psycopg.connect(c.url(), autocommit=True) as conn:  # the coordinator only
        conn.execute("set citus.enable_create_role_propagation = off")
        conn.execute("create role anon login noinherit")
        conn.execute("create role authenticated login noinherit")
    with distributed_database(c, TEST_SHARD_COUNT) as url:
        result = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "preflight", "--json"])
        assert result.exit_code == 8, result.output
        checks = [x for x in json.loads(result.stdout)["checks"] if x["level"] == "error"]
        assert sorted(x["check"] for x in checks) == ["citus.role", "citus.role"], checks
        workers = {f"127.0.0.1:{p}" for p in c.worker_ports}
        assert {next(w for w in workers if w in x["message"]) for x in checks} == workers
        for x in checks:
            assert "role anon, authenticated exists on the coordinator but not on worker" in x["message"]
            assert x["fix"].endswith("create role anon login noinherit; create role authenticated login noinherit;")
        # migrate runs the same checks first and applies nothing
        refused = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "migrate"])
        assert refused.exit_code == 8 and "citus.role" in refused.output, refused.output
        with psycopg.connect(url) as conn:
            assert conn.execute("select to_regclass('public.companies')").fetchone() == (None,)
        # the fix, as printed, on each worker
        for port in c.worker_ports:
            fix = next(x["fix"] for x in checks if f"127.0.0.1:{port}" in x["message"])
            with psycopg.connect(c.url("worker1" if port == c.ports["worker1"] else "worker2"),
                                 autocommit=True) as conn:
                for statement in fix.split("creates): ", 1)[1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
        again = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "preflight", "--json"])
        assert again.exit_code == 0, again.output
        assert [x for x in json.loads(again.stdout)["checks"] if x["level"] == "error"] == []
        applied = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "migrate"])
        assert applied.exit_code == 0, applied.output
