"""`make test` against a real password-protected server (DATABASE_URL with a password, as
the README promises): a Debian PostgreSQL 15 with scram-sha-256 on every connection and
pg_cron preloaded, the suites that touch the server from outside (pooler, PG* variables,
pgbench, pg_cron, bench's writer) run against it in a pytest of their own. It passes, it
never prints the password (not even in a failing test's traceback), and it leaves the
server as it found it: no database, no role, no pg_cron job."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from .debian_pg import (
    DebianServer,
    debian_bin,
    debian_postgres,
    ensure_debian_package,
    ensure_pg15_pgvector,
    missing_server_reason,
)

ROOT = Path(__file__).resolve().parents[1]
MAJOR = 15
# What must hold against such a server: the pooler in each pool mode, the PG* variables and
# service files, the password never printed, pgbench's writer, pg_cron scheduling.
SUBSET = [
    "tests/test_connections.py",
    "tests/test_bench.py::test_the_write_benchmark_counts_usage_exactly_and_measures_full_bare_and_floor",
    "tests/test_lifecycle_jobs.py::test_cli_runs_jobs_with_a_summary_and_restores",
]
FAILING = '''
def test_a_failure_shows_the_test_database(neurant_server):
    assert neurant_server.url == "", neurant_server
'''

pytestmark = pytest.mark.skipif(missing_server_reason(MAJOR) is not None,
                                reason=missing_server_reason(MAJOR) or "")


@pytest.fixture(scope="module")
def server() -> Iterator[DebianServer]:
    share = Path(f"/usr/share/postgresql/{MAJOR}/extension")
    for package, files in ((f"postgresql-{MAJOR}-cron", [debian_bin(MAJOR).parent / "lib" / "pg_cron.so"]),
                           (f"postgresql-{MAJOR}-pgtap", [share / "pgtap.control"])):
        reason = ensure_debian_package(package, files)
        if reason:
            pytest.skip(reason)
    reason = ensure_pg15_pgvector()
    if reason:
        pytest.skip(reason)
    password = f"Pw-{secrets.token_hex(6)}-on"  # a password the old masking would have garbled around
    conf = {"shared_preload_libraries": "'pg_cron'", "cron.database_name": "'postgres'", "max_connections": "100"}
    with debian_postgres(MAJOR, conf, password=password) as pg:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("create extension pg_cron")
        yield pg


def state(pg: DebianServer) -> tuple[set[str], set[str], int]:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        roles = {r[0] for r in conn.execute("select rolname from pg_roles")}
        databases = {r[0] for r in conn.execute("select datname from pg_database")}
        jobs = conn.execute("select count(*) from cron.job").fetchone()
    return roles, databases, int(jobs[0]) if jobs else -1


def run_pytest(pg: DebianServer, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "NEURANT_TEST", "PYTEST")) and k != "DATABASE_URL"}
    env["DATABASE_URL"] = pg.url()
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=900)


def test_the_suite_passes_against_a_password_server_and_leaves_it_as_it_was(server: DebianServer) -> None:
    before = state(server)
    done = run_pytest(server, SUBSET, ROOT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:].replace(server.password or "", "<password>")
    assert " passed" in done.stdout
    assert server.password and server.password not in output, "the password was printed"
    assert state(server) == before, "the run left roles, databases or pg_cron jobs behind"


def test_a_failing_test_against_a_password_server_does_not_print_the_password(
        server: DebianServer, tmp_path: Path) -> None:
    (tmp_path / "test_fails.py").write_text(FAILING, encoding="utf-8")
    before = state(server)
    done = run_pytest(server, ["-p", "neurant_db.pytest_plugin", "-l", "test_fails.py"], tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "1 failed" in done.stdout, output[-3000:]
    assert "neurant_test_" in output, "the failure shows the test database"
    assert server.password and server.password not in output, "the password was printed"
    assert state(server) == before
