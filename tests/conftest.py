"""Shared pytest fixtures: scratch databases on the session's test server and
small migration trees for exercising the runner."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from neurant_db.database import DatabaseTarget, with_database
from neurant_db.migrate import migrate
from neurant_db.paths import MIGRATION_FOLDERS, sql_root
from neurant_db.render import render_all
from neurant_db.testdb import TestDatabase, test_settings

from .citus_cluster import CitusCluster, migrated_database, missing_reason, skip_or_fail
from .citus_cluster import citus_cluster as start_citus_cluster

# The pgTAP collector and the neurant_db/neurant_server fixtures: opt-in (no pytest11 entry
# point), so a service that installs neurant-db keeps its own test runs free of them.
pytest_plugins = ["neurant_db.pytest_plugin"]


@contextmanager
def scratch_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """An empty database on the server of `server_url` (its URL), dropped afterwards; from
    `template` (template0: a plain database even where template1 is a Supabase project's)."""
    name = f"scratch_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"' + (f' template "{template}"' if template else ""))
    try:
        yield with_database(server_url, name)  # a URI stays a URI; a keyword DSN or "" (PG*) gets dbname=
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def migrated_template(server_url: str, prefix: str,
                      prepare: Callable[[str], None] | None = None) -> Iterator[str]:
    """A database on the server of `server_url` migrated with the suites' settings, then
    `prepare(url)`: its name, for `scratch_database(..., template=name)` copies; dropped after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        url = with_database(server_url, name)
        settings = test_settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        if prepare is not None:
            prepare(url)
        yield name
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[CitusCluster]:
    """A real Citus cluster (coordinator and two workers, tests/citus_cluster.py) for the
    session: skipped with one line when it cannot be had, a failure under CI=true."""
    reason = missing_reason()
    if reason:
        skip_or_fail(reason)
    with start_citus_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def citus_migrated(citus_cluster: CitusCluster) -> Iterator[str]:
    """A distributed database migrated with profile citus once per session, no rows: the
    template of `tests.citus_cluster.copy_of`, never used directly (a copy shuts its doors)."""
    with migrated_database(citus_cluster) as url:
        yield url


@pytest.fixture
def scratch_db(neurant_server: TestDatabase) -> Iterator[str]:
    """An empty database on the test server, dropped afterwards."""
    with scratch_database(neurant_server.url) as url:
        yield url


@pytest.fixture
def plain_scratch_db(neurant_server: TestDatabase) -> Iterator[str]:
    """An empty plain PostgreSQL database (from template0), dropped afterwards: for what profile
    vanilla does, also on a server whose template1 is a Supabase project's."""
    with scratch_database(neurant_server.url, template="template0") as url:
        yield url


@pytest.fixture
def sql_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny migration tree (three migrations in two folders; the other three folders
    empty) the runner reads instead of the real one."""
    root = tmp_path / "sql"
    for folder in ("schema", "functions", "policies", "indexes", "seeds"):
        (root / folder).mkdir(parents=True)
    write(root, "schema/0010_widgets.sql",
          "-- widgets\ncreate table public.widgets (id int primary key, name text);\n",
          "drop table public.widgets;\n")
    write(root, "functions/0020_widget_count.sql",
          "-- a function with a dollar-quoted body containing ; and $x$\n"
          "create function public.widget_count() returns bigint language plpgsql as $$\n"
          "begin return (select count(*) from public.widgets); end; $$;\n",
          "drop function public.widget_count();\n")
    write(root, "schema/0030_gadgets.sql",
          "-- dims {{ embedding_dimensions }}\n"
          "create table public.gadgets (id int primary key, dims int default {{ embedding_dimensions }});\n",
          "drop table public.gadgets;\n")
    monkeypatch.setenv("NEURANT_SQL_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    return root


@pytest.fixture
def sql_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package's SQL tree (schema/_tables.toml included) the runner reads
    instead of the real one: edit it to build a schema the real tree must refuse."""
    root = tmp_path / "sql"
    for folder in MIGRATION_FOLDERS:
        shutil.copytree(sql_root() / folder, root / folder)
    monkeypatch.setenv("NEURANT_SQL_ROOT", str(root))
    return root


def git(repo: Path, *args: str) -> str:
    """Run git in repo as a fixed author; its output."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def project_tree(root: Path, files: dict[str, tuple[str, str | None]], fixtures: str,
                 monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project at root (the five migration folders, tests/fixtures) holding `files`
    (path -> apply, rollback) and one fixture file, committed to a new git repository
    and made the SQL root."""
    for folder in (*MIGRATION_FOLDERS, "tests/fixtures"):
        (root / folder).mkdir(parents=True)
    for rel, (apply_sql, rollback_sql) in files.items():
        write(root, rel, apply_sql, rollback_sql)
    (root / "tests/fixtures/0100_fixtures.sql").write_text(fixtures, encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1")
    monkeypatch.setenv("NEURANT_SQL_ROOT", str(root))
    monkeypatch.chdir(root.parent)
    return root


def write(root: Path, rel: str, apply_sql: str, rollback_sql: str | None) -> None:
    path = root / rel
    path.write_text(apply_sql, encoding="utf-8")
    if rollback_sql is not None:
        path.with_name(path.name[:-4] + ".rollback.sql").write_text(rollback_sql, encoding="utf-8")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The counts of the suites run on the Citus cluster (tests/citus_suite.py), when they ran."""
    from .citus_suite import COUNTS

    if COUNTS.files:
        terminalreporter.write_line(COUNTS.line())
