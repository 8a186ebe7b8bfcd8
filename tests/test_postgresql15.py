"""PostgreSQL 15, the oldest supported server, is first class for the committed contract
(issue 22, item 8): on a real Debian PostgreSQL 15 migrated with the default settings,
`neurant-db docs --check` finds the committed files fresh (they carry no server major and
no setting 15 does not know), and psql 15 loads docs/schema.sql into an empty database of
that server, giving back every object of the migrated schema. The named SQL blocks of
docs/services.md run as written in psql 15 (their placeholders are psql variables, given
with -v), as the login roles the guide creates, on a migrated database with the test
fixtures (issue 22, item 9)."""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
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
from neurant_db.testdb import test_settings

from .debian_pg import DebianServer, debian_bin, debian_postgres, ensure_pg15_pgvector, missing_server_reason
from .test_service_guide import (
    CHATBOT_A1,
    COMPANY_A,
    COMPANY_B,
    OWNER_A_AUTH,
    ROOT,
    SERVICES,
    claims,
    fill,
    json_example,
    sql_block,
    variables,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclass(frozen=True)
class Pg15:
    server: DebianServer
    migrated: str  # URL of a database migrated with the default settings

    def psql(self, database: str, *args: str, script: str | None = None,
             user: str = "postgres") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(debian_bin(15) / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-d", self.server.url(database, user), *args],
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


@pytest.fixture(scope="module")
def guide_db(pg15: Pg15) -> str:
    """Database `guide` of the PostgreSQL 15: migrated with the test settings, the committed
    fixtures loaded, and the guide's login roles created by psql 15 from its own block."""
    with psycopg.connect(pg15.server.url(), autocommit=True) as conn:
        conn.execute("create database guide")
    settings = test_settings("vanilla")  # this server is a plain PostgreSQL 15, whatever the suites' profile
    migrate(DatabaseTarget(pg15.server.url("guide")), render_all(settings), settings)
    with psycopg.connect(pg15.server.url("guide"), autocommit=True) as conn, conn.transaction():
        for path in sorted((ROOT / "tests" / "fixtures").glob("*.sql")):
            conn.execute(path.read_text(encoding="utf-8"))
    roles = fill(sql_block("vanilla-login-roles"), {f"{s}-password": secrets.token_hex(8) for s in SERVICES})
    done = pg15.psql("guide", script=roles)
    assert done.returncode == 0, done.stderr
    return "guide"


def run_guide_block(pg15: Pg15, name: str, user: str, **values: str) -> str:
    """The block as written, run by psql 15 as `user` with each psql variable given by -v."""
    block = sql_block(name)
    assert variables(block) == set(values), f"{name} uses the psql variables {sorted(variables(block))}"
    args = [f"--variable={k}={v}" for k, v in values.items()]
    done = pg15.psql("guide", *args, script=block, user=user)
    assert done.returncode == 0, f"{name} as {user}: {done.stderr}"
    return done.stdout


def vector(axis: int) -> str:
    dims = test_settings().embedding_dimensions
    return "[" + ",".join("1" if i == axis else "0" for i in range(1, dims + 1)) + "]"


def test_the_dashboard_session_runs_in_psql_15_and_sees_the_callers_company(pg15: Pg15, guide_db: str) -> None:
    out = run_guide_block(pg15, "dashboard-session", "neurant_dashboard",
                          claims=json.dumps(json_example()), company_id=COMPANY_A)
    assert COMPANY_A in out and COMPANY_B not in out
    out = run_guide_block(pg15, "dashboard-session", "neurant_dashboard",
                          claims=json.dumps(json_example()), company_id=COMPANY_B)
    assert COMPANY_B not in out


def test_the_pooled_request_and_the_reset_run_in_psql_15(pg15: Pg15, guide_db: str) -> None:
    out = run_guide_block(pg15, "pooled-request", "postgres", role="authenticated",
                          claims=claims(OWNER_A_AUTH, "owner.a@example.com"))
    assert f"{OWNER_A_AUTH}|authenticated" in out
    run_guide_block(pg15, "pooler-reset", "postgres")


def test_the_backend_sequences_run_in_psql_15_as_the_backend_logins(pg15: Pg15, guide_db: str) -> None:
    conversation, document = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(pg15.server.url("guide"), autocommit=True) as conn:
        conn.execute("insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel)"
                     " values (%s, %s, %s, 'psql-15', 'whatsapp')", (COMPANY_A, conversation, CHATBOT_A1))
        conn.execute("insert into public.documents (company_id, id, title, mime_type, storage_path, size_bytes)"
                     " values (%s, %s, 'Opening hours', 'text/plain', %s, 100)",
                     (COMPANY_A, document, f"docs/{document}.txt"))
    run_guide_block(pg15, "bot-engine-session", "neurant_bot", company_id=COMPANY_A, conversation_id=conversation,
                    end_user_text="Opening hours?", embedding=vector(1), bot_text="We open at 9:00.")
    run_guide_block(pg15, "ingestion-worker", "neurant_ingest", company_id=COMPANY_A, document_id=document,
                    chunk_text="We open at 9:00.", embedding=vector(2))
    run_guide_block(pg15, "jobs-session", "neurant_jobs")
    with psycopg.connect(pg15.server.url("guide")) as conn:
        senders = conn.execute("select sender_type::text from public.messages where conversation_id = %s"
                               " order by 1", (conversation,)).fetchall()
        status = conn.execute("select status::text from public.documents where id = %s", (document,)).fetchone()
    assert senders == [("bot",), ("end_user",)] and status == ("ready",)


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
