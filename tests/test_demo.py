"""`neurant-db demo`: demo tenants are created through the public API, idempotently,
and each member sees only their own company under RLS."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict

from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget
from neurant_db.migrate import migrate
from neurant_db.paths import sql_root
from neurant_db.render import render_all
from neurant_db.testdb import test_settings

ROOT = sql_root()


def test_demo_creates_two_isolated_tenants_and_is_idempotent(scratch_db: str) -> None:
    settings = test_settings()
    migrate(DatabaseTarget(scratch_db), render_all(settings), settings)
    first = CliRunner().invoke(cli, ["--database-url", scratch_db, "demo"])
    assert first.exit_code == 0, first.output
    assert "tenants: 2 (Acme Retail, Clinica Sol)" in first.output
    assert "leo@acme.test        operador      sees company Acme Retail" in first.output
    assert "Clinica Sol" not in next(line for line in first.output.splitlines() if "leo@acme" in line)
    second = CliRunner().invoke(cli, ["--database-url", scratch_db, "demo"])
    assert second.exit_code == 0 and "tenants: 2 (" in second.output


def test_an_unmigrated_database_is_a_message_not_a_traceback(scratch_db: str) -> None:
    result = CliRunner().invoke(cli, ["--database-url", scratch_db, "demo"])
    assert result.exit_code == 1
    assert "error: the database is not migrated" in result.output and "run migrate first" in result.output
    assert "Traceback" not in result.output


def test_make_demo_never_writes_into_a_server_the_environment_names(
        scratch_db: str, tmp_path: Path) -> None:
    # PGHOST/PGDATABASE (and DATABASE_URL) name a real server's database: make demo must
    # still only touch the local embedded server, and say what it ignored
    server = conninfo_to_dict(scratch_db)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}
    env.update(NEURANT_HOME=str(tmp_path / "state"), DATABASE_URL=scratch_db,
               PGHOST=str(server.get("host", "")), PGPORT=str(server.get("port", "")),
               PGDATABASE=str(server["dbname"]), PGUSER=str(server.get("user", "")))
    try:
        done = subprocess.run(["make", "-s", "-C", str(ROOT), "demo"], env=env, capture_output=True,
                              text=True, timeout=600)
    finally:
        subprocess.run([str(ROOT / ".venv" / "bin" / "neurant-db"), "server", "stop"], env=env,
                       capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ignoring DATABASE_URL PGDATABASE PGHOST PGPORT PGUSER" in done.stdout, done.stdout[:500]
    assert "tenants: 2 (Acme Retail, Clinica Sol)" in done.stdout
    with psycopg.connect(scratch_db) as conn:
        tables = conn.execute("select count(*) from pg_tables where schemaname in ('public', 'private')").fetchone()
    assert tables == (0,), "make demo migrated the database the environment named"
