"""Provision the database the test suites run against.

Without DATABASE_URL (or libpq's PGHOST/PGHOSTADDR/PGSERVICE): a throwaway embedded
server (deleted at exit). With it: a fresh database `neurant_test_<random>` created on
that server (dropped at exit), so tests never touch an existing database; with profile
citus on a Citus coordinator that has workers, it is created on every node and
distributed (citus_testdb.py). Either way it is migrated
from zero with the test settings, and pgTAP is made available.
"""

from __future__ import annotations

import atexit
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from . import citus_testdb, pgtap
from .database import DatabaseTarget, connect, normalize_url, server_named_by_environment, with_database
from .migrate import migrate
from .paths import sql_root
from .render import Migration, render_all
from .settings import Settings

TEST_EMBEDDING_DIMENSIONS = 8


def test_settings() -> Settings:
    dims = int(os.environ.get("NEURANT_TEST_EMBEDDING_DIMENSIONS", TEST_EMBEDDING_DIMENSIONS))
    profile = os.environ.get("NEURANT_TEST_PROFILE", "vanilla")
    return Settings(profile=profile, embedding_dimensions=dims).validate()


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


@dataclass
class TestDatabase:
    __test__ = False  # not a pytest test class

    target: DatabaseTarget
    settings: Settings
    migrations: list[Migration]
    embedded_sharedir: Path | None
    migrated: bool = False

    def migrate(self) -> None:
        migrate(self.target, self.migrations, self.settings)
        self.migrated = True

    @property
    def url(self) -> str:
        return self.target.url

    def preamble(self) -> list[tuple[str, str]]:
        """pgTAP + test helpers + fixtures, run inside every test transaction."""
        parts = [(
            "pgtap",
            "create schema if not exists tap;\n"
            "create extension if not exists pgtap schema tap;\n"
            "grant usage on schema tap to public;\n"
            "set local search_path = public, tap, extensions;\n",
        )]
        for path in sorted((sql_root() / "tests" / "fixtures").glob("*.sql")):
            parts.append((f"fixture {path.name}", path.read_text(encoding="utf-8")))
        return parts


def provision(database_url: str | None = None, *, migrate_schema: bool = True,
              with_pgtap: bool = True) -> TestDatabase:
    settings = test_settings()
    migrations = render_all(settings)
    url = database_url or os.environ.get("DATABASE_URL")
    sharedir: Path | None = None
    if url or server_named_by_environment():  # "" : libpq's PG* variables name the server
        base = normalize_url(url) if url else ""
        name = f"neurant_test_{secrets.token_hex(4)}"
        # Profile citus on a Citus coordinator with workers: a distributed database.
        nodes = citus_testdb.cluster_nodes(base) if settings.profile == "citus" else None
        if nodes:
            citus_testdb.create_distributed_database(base, name, nodes)
        else:
            with connect(base) as admin:
                admin.execute(f'create database "{name}"')
        target = DatabaseTarget(with_database(base, name))

        def drop() -> None:
            try:
                if nodes:
                    citus_testdb.drop_distributed_database(base, name, nodes)
                    return
                with connect(base) as admin:
                    admin.execute(f'drop database if exists "{name}" with (force)')
            except Exception:
                pass

        atexit.register(drop)
    else:
        from .server import embedded_sharedir, start_throwaway

        target = DatabaseTarget(start_throwaway().url(), is_local=True)
        sharedir = embedded_sharedir()
    if with_pgtap:
        with connect(target.url) as conn:
            pgtap.ensure_available(conn, embedded_sharedir=sharedir)
    db = TestDatabase(target, settings, migrations, sharedir)
    if migrate_schema:
        db.migrate()
    return db
