"""`neurant-db docs`: the committed schema dump, reference and ER diagram
(docs/schema.sql, docs/schema.md, docs/erd.svg) match a fresh build of the
default settings, they cover the whole catalog, and the freshness check does
fail when the schema changes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from click.testing import CliRunner, Result

from neurant_db.catalog import DOCUMENTED_SCHEMAS, read_catalog
from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget, with_database
from neurant_db.docs import DOCS_FILES, find_pg_dump
from neurant_db.erd import render_erd
from neurant_db.errors import NeurantError
from neurant_db.migrate import migrate
from neurant_db.reference import render_reference
from neurant_db.render import render_all
from neurant_db.settings import Settings
from neurant_db.testdb import TestDatabase

DOCS = Path(__file__).resolve().parent.parent / "docs"
REGENERATE = "regenerate on a freshly migrated default-settings database: neurant-db migrate && neurant-db docs"


def _create(server_url: str, template: str | None = None) -> str:
    name = f"docs_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
    return name


def _drop(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def default_db(neurant_server: TestDatabase) -> Iterator[str]:
    """A scratch database migrated with the default settings (what the committed docs describe),
    from template0: on a server whose template1 is a Supabase project's, a plain database still."""
    name = _create(neurant_server.url, template="template0")
    url = with_database(neurant_server.url, name)
    try:
        settings = Settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        yield url
    finally:
        _drop(neurant_server.url, name)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)  # no neurant-db.toml of the checkout: default settings
    yield CliRunner()


def _server_major(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("select current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    return int(row[0])


def _docs(run: CliRunner, url: str, *args: str) -> Result:
    return run.invoke(cli, ["--database-url", url, "docs", *args])


def test_the_committed_schema_dump_reference_and_er_diagram_match_a_fresh_build(
        default_db: str, run: CliRunner) -> None:
    result = _docs(run, default_db, "--check", "--out", str(DOCS))
    assert result.exit_code == 0, f"{result.output}\n{REGENERATE}"
    assert "docs are fresh" in result.output


def test_every_table_enum_type_and_function_of_the_catalog_appears_in_the_reference(default_db: str) -> None:
    with psycopg.connect(default_db) as conn:
        conn.execute("set search_path = pg_catalog")  # the reference qualifies every type outside pg_catalog
        names = [r[0] for r in conn.execute("""
            select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any(%(s)s) and c.relkind in ('r', 'p', 'v', 'm', 'f') and not c.relispartition
            union all
            select n.nspname || '.' || t.typname from pg_type t join pg_namespace n on n.oid = t.typnamespace
            where n.nspname = any(%(s)s) and t.typtype = 'e'
            union all
            select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = any(%(s)s)
            """, {"s": list(DOCUMENTED_SCHEMAS)})]
    with psycopg.connect(default_db, autocommit=True) as conn:
        catalog = read_catalog(conn)
    reference = render_reference(catalog, "header")
    diagram = render_erd(catalog, "header")
    assert len(names) > 100
    missing = [n for n in names if f"#### `{n}`\n" not in reference]
    assert missing == []
    for table in ("public.chatbots", "archive.messages_archived", "auth.users"):
        assert f'<g class="table" id="{table}">' in diagram


def test_the_freshness_check_reports_every_file_of_a_changed_schema_as_stale(
        neurant_server: TestDatabase, default_db: str, run: CliRunner, tmp_path: Path) -> None:
    try:
        find_pg_dump(_server_major(default_db))
    except NeurantError as exc:
        pytest.skip(f"no pg_dump of the server's major: {exc.message}")
    out = tmp_path / "docs"
    written = _docs(run, default_db, "--out", str(out))
    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in out.iterdir()) == sorted(DOCS_FILES)
    fresh = _docs(run, default_db, "--check", "--out", str(out))
    assert fresh.exit_code == 0, fresh.output

    copy = _create(neurant_server.url, template=urlsplit(default_db).path.strip("/"))
    try:
        url = with_database(neurant_server.url, copy)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("alter table public.legal_holds add column docs_probe integer")
            conn.execute("comment on column public.legal_holds.docs_probe is 'added by the docs test'")
        stale = _docs(run, url, "--check", "--out", str(out))
    finally:
        _drop(neurant_server.url, copy)
    assert stale.exit_code == 1, stale.output
    for name in DOCS_FILES:
        assert f"stale: {out / name}" in stale.output
    assert "docs_probe" in stale.output
    assert f"{len(DOCS_FILES)} stale file(s)" in stale.output
    assert (out / "schema.md").read_text(encoding="utf-8").count("docs_probe") == 0  # --check writes nothing


def test_docs_refuses_a_database_that_is_not_fully_migrated(scratch_db: str, run: CliRunner) -> None:
    result = _docs(run, scratch_db)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert "run migrate first" in result.output


def test_docs_refuses_a_database_migrated_with_other_settings(neurant_db: TestDatabase, run: CliRunner) -> None:
    if neurant_db.settings == Settings():
        pytest.skip("the session's test database uses the default settings")
    result = _docs(run, neurant_db.url, "--check")
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "other settings" in result.output
