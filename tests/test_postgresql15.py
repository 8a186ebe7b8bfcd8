"""PostgreSQL 15, the oldest supported server, is first class for the committed contract
(issue 22, item 8): on a real Debian PostgreSQL 15 migrated with the default settings,
`neurant-db docs --check` finds the committed files fresh (they carry no server major and
no setting 15 does not know), and psql 15 loads docs/schema.sql into an empty database of
that server, giving back every object of the migrated schema."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget
from neurant_db.migrate import migrate
from neurant_db.render import render_all
from neurant_db.schema_diff import OWNED_SCHEMAS, definitions
from neurant_db.settings import Settings

from .debian_pg import DebianServer, debian_bin, debian_postgres, ensure_pg15_pgvector, missing_server_reason

DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclass(frozen=True)
class Pg15:
    server: DebianServer
    migrated: str  # URL of a database migrated with the default settings

    def psql(self, database: str, *args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(debian_bin(15) / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-d", self.server.url(database), *args],
                              input=script, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def pg15() -> Iterator[Pg15]:
    reason = missing_server_reason(15) or ensure_pg15_pgvector()
    if reason:
        pytest.skip(reason)
    with debian_postgres(15) as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("create database neurant")
        settings = Settings()
        migrate(DatabaseTarget(server.url("neurant")), render_all(settings), settings)
        yield Pg15(server, server.url("neurant"))


def test_docs_check_on_postgresql_15_finds_the_committed_files_fresh(
        pg15: Pg15, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no neurant-db.toml: the default settings the committed files describe
    result = CliRunner().invoke(cli, ["--database-url", pg15.migrated, "docs", "--check", "--out", str(DOCS)])
    assert result.exit_code == 0, result.output
    assert "docs are fresh" in result.output


def test_psql_15_loads_the_committed_schema_dump_into_an_empty_database(pg15: Pg15) -> None:
    assert pg15.psql("postgres", "-c", "create database contract").returncode == 0
    loaded = pg15.psql("contract", "-f", str(DOCS / "schema.sql"))
    assert loaded.returncode == 0, loaded.stderr
    # every object of the migrated schema is there (a reloaded CHECK may print its parentheses
    # differently, so the object lists are compared, and the functions and policies in full)
    with psycopg.connect(pg15.server.url("contract")) as loaded_db, psycopg.connect(pg15.migrated) as migrated_db:
        contract, expected = definitions(loaded_db, OWNED_SCHEMAS), definitions(migrated_db, OWNED_SCHEMAS)
    assert sorted(set(expected) ^ set(contract)) == []
    whole = ("function", "procedure", "policy", "grant", "trigger", "index")
    assert [k for k in expected if k[0] in whole and expected[k] != contract[k]] == []
