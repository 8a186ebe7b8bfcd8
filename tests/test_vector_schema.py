"""The vector_schema setting is honoured by every migration, not only the one that
installs pgvector."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.testdb import test_cli_args


def test_pgvector_in_a_custom_schema_builds_the_whole_schema(
        scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "neurant-db.toml").write_text('vector_schema = "vec"\n')
    with psycopg.connect(scratch_db, autocommit=True) as conn:  # a Supabase project has it in extensions
        if conn.execute("select 1 from pg_extension where extname = 'vector'").fetchone():
            conn.execute("create schema vec; alter extension vector set schema vec")  # preflight's fix
    result = CliRunner().invoke(cli, ["--database-url", scratch_db, *test_cli_args(4), "migrate"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(scratch_db) as conn:
        row = conn.execute(
            "select n.nspname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
            "join pg_type t on t.oid = a.atttypid join pg_namespace n on n.oid = t.typnamespace "
            "where a.attrelid = 'public.document_chunks'::regclass and a.attname = 'embedding'").fetchone()
    assert row is not None and row[0] == "vec" and row[1].endswith("vector(4)")
