"""Provision the database the test suites run against.

Without a server (the caller's DatabaseTarget, see database.named_target): a throwaway
embedded server (deleted at exit). With one: a fresh database `neurant_test_<random>`
created on that server (dropped at exit), so tests never touch an existing database. Either way it is migrated
from zero with the test settings, and pgTAP is made available.
"""

from __future__ import annotations

import atexit
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from . import pgtap
from .database import DatabaseTarget, Source
from .migrate import migrate
from .paths import sql_root
from .render import Migration, render_all
from .server import embedded_sharedir, start_throwaway
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


def provision(server: DatabaseTarget | None = None, *, migrate_schema: bool = True,
              with_pgtap: bool = True) -> TestDatabase:
    """A fresh database on `server` (dropped at exit), or, without one, a throwaway
    embedded server (deleted at exit); migrated unless told otherwise."""
    settings = test_settings()
    migrations = render_all(settings)
    sharedir: Path | None = None
    if server is not None:
        name = f"neurant_test_{secrets.token_hex(4)}"
        with server.connect() as admin:
            admin.execute(f'create database "{name}"')
        target = server.with_database(name, Source.THROWAWAY_DATABASE)

        def drop() -> None:
            try:
                with server.connect() as admin:
                    admin.execute(f'drop database if exists "{name}" with (force)')
            except Exception:
                pass

        atexit.register(drop)
    else:
        target = DatabaseTarget(start_throwaway().url(), Source.THROWAWAY_SERVER)
        sharedir = embedded_sharedir()
    if with_pgtap:
        with target.connect() as conn:
            pgtap.ensure_available(conn, embedded_sharedir=sharedir)
    db = TestDatabase(target, settings, migrations, sharedir)
    if migrate_schema:
        db.migrate()
    return db
