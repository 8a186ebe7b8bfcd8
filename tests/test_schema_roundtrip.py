"""The real schema: migrate from zero, roll everything back, migrate again.
Every rollback must undo its migration exactly, so the second build is
byte-for-byte the first (pg_dump --schema-only), and nothing is left between."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.docs import dump_schema
from neurant_db.testdb import test_cli_args


def _objects(url: str) -> list[str]:
    """Relations, functions and enum types in the schemas the migrations touch (on Supabase,
    auth's own objects are there before and must be there after)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            select n.nspname || '.' || c.relname from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('public', 'private', 'archive', 'auth')
            union all
            select n.nspname || '.' || p.proname from pg_proc p
            join pg_namespace n on n.oid = p.pronamespace
            where n.nspname in ('public', 'private', 'archive', 'auth')
            union all
            select n.nspname || '.' || t.typname from pg_type t
            join pg_namespace n on n.oid = t.typnamespace
            where n.nspname in ('public', 'private', 'archive', 'auth') and t.typtype = 'e'
            """).fetchall()
    return sorted(r[0] for r in rows)


def test_rolling_everything_back_leaves_nothing_and_rebuilding_gives_the_same_schema(
        scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke
    args = ["--database-url", scratch_db, *test_cli_args()]
    before = _objects(scratch_db)
    assert run(cli, [*args, "migrate"]).exit_code == 0
    first = dump_schema(scratch_db)
    status = run(cli, [*args, "status", "--json"])
    assert status.exit_code == 0 and json.loads(status.output)["summary"]["pending"] == 0
    back = run(cli, [*args, "rollback", "--to", "0", "--yes"])  # drops the seeded reference tables
    assert back.exit_code == 0, back.output
    assert _objects(scratch_db) == before
    assert run(cli, [*args, "migrate"]).exit_code == 0
    assert dump_schema(scratch_db) == first


def test_the_schema_dump_of_a_postgresql_15_comes_from_its_own_pg_dump_and_restores_on_it() -> None:
    """A newer pg_dump writes settings an older server does not know (pg_dump 18:
    `SET transaction_timeout`), so the dump of a PostgreSQL 15 would not restore on it."""
    from .debian_pg import debian_bin, debian_postgres, missing_server_reason

    if missing_server_reason(15):
        pytest.skip(missing_server_reason(15) or "")
    with debian_postgres(15) as pg, psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("create table public.widgets (id int primary key, name text not null default 'w');"
                     "comment on table public.widgets is 'a widget'")
        conn.execute("create database copy")
        dump = dump_schema(pg.url())
        assert dump == dump_schema(pg.url(), debian_bin(15) / "pg_dump")
        done = subprocess.run([str(debian_bin(15) / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url("copy")],
                              input=dump, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert dump_schema(pg.url("copy")) == dump
