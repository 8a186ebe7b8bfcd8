"""`neurant-db demo`: demo tenants are created through the public API, idempotently,
and each member sees only their own company under RLS."""

from __future__ import annotations

from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget
from neurant_db.migrate import migrate
from neurant_db.render import render_all
from neurant_db.testdb import test_settings


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
