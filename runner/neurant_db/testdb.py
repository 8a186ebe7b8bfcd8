"""Provision the database the test suites run against.

Without a server (the caller's DatabaseTarget, see database.named_target): a throwaway
embedded server (deleted at exit). With one: a fresh database `neurant_test_<random>`
created on that server (dropped at exit), so tests never touch an existing database
(NEURANT_TEST_TEMPLATE: a copy of that database, e.g. one prepared like a new Supabase
project and migrated as its `postgres`, tests/test_supabase_suite.py); with profile
citus on a Citus coordinator that has workers, it is created on every node and
distributed (citus_testdb.py). A password in the server's URL moves into a private
passfile (passfile.py), so no URL the tests handle, print or put in a traceback carries
it. Either way it is migrated
from zero with the test settings, and pgTAP is made available.
"""

from __future__ import annotations

import atexit
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from . import citus_testdb, pgtap
from .database import DatabaseTarget, Source, connect, with_database
from .migrate import migrate
from .passfile import password_out_of_url
from .paths import sql_root
from .render import Migration, render_all
from .server import embedded_sharedir, start_throwaway
from .settings import Settings

TEST_EMBEDDING_DIMENSIONS = 8
PGTAP_SETUP = ("create schema if not exists tap;\n"
               "create extension if not exists pgtap schema tap;\n"
               "grant usage on schema tap to public;\n")
SEARCH_PATH = "set local search_path = public, tap, extensions;\n"
# Citus: the fixtures write reference tables after multi-shard statements in one transaction.
CITUS_SEQUENTIAL = "set local citus.multi_shard_modify_mode = 'sequential';\n"


def fixture_files() -> list[tuple[str, str]]:
    """(label, sql) of tests/fixtures/*.sql in file order: the helpers, then the rows."""
    return [(f"fixture {path.name}", path.read_text(encoding="utf-8"))
            for path in sorted((sql_root() / "tests" / "fixtures").glob("*.sql"))]


def commit_fixtures(url: str) -> None:
    """pgTAP and every fixture file, each committed in a transaction of its own."""
    with connect(url, autocommit=True, purpose="fixtures") as conn:
        row = conn.execute("select to_regclass('pg_catalog.pg_dist_partition') is not null").fetchone()
        citus = CITUS_SEQUENTIAL if row and row[0] else ""
        for _label, text in [("pgtap", PGTAP_SETUP), *fixture_files()]:
            with conn.transaction():
                conn.execute((citus + text).encode("utf-8"))


# Migrations whose effect lives on the database object, not in it (its privileges, the roles'
# settings in it): `create database ... template` does not copy them.
DATABASE_LEVEL_MIGRATIONS = ("database_privileges",)


def reapply_database_level(target: DatabaseTarget, migrations: list[Migration]) -> None:
    """Apply again, on a copy of a migrated database, what its copy lost (idempotent DO blocks)."""
    with target.connect(autocommit=True) as conn:
        for migration in migrations:
            if migration.source.name in DATABASE_LEVEL_MIGRATIONS:
                conn.execute(migration.apply_sql.encode("utf-8"))


def test_settings(profile: str | None = None) -> Settings:
    """The suites' settings: `profile`, else NEURANT_TEST_PROFILE, else vanilla."""
    dims = int(os.environ.get("NEURANT_TEST_EMBEDDING_DIMENSIONS", TEST_EMBEDDING_DIMENSIONS))
    profile = profile or os.environ.get("NEURANT_TEST_PROFILE", "vanilla")
    return Settings(profile=profile, embedding_dimensions=dims).validate()


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


def test_cli_args(embedding_dimensions: int | None = None) -> list[str]:
    """The CLI options that render the suites' settings (test_settings): `--profile` and
    `--embedding-dimensions` (`embedding_dimensions` overrides the latter)."""
    settings = test_settings()
    dims = settings.embedding_dimensions if embedding_dimensions is None else embedding_dimensions
    return ["--profile", settings.profile, "--embedding-dimensions", str(dims)]


test_cli_args.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


@dataclass
class TestDatabase:
    __test__ = False  # not a pytest test class

    target: DatabaseTarget
    settings: Settings
    migrations: list[Migration]
    embedded_sharedir: Path | None
    migrated: bool = False
    fixtures_committed: bool = False
    # On a Citus cluster (profile citus, a coordinator with workers): the suites then run
    # with the fixtures committed first and the matrix one cell per transaction.
    distributed: bool = False
    # The server's password, when it has one: not in any URL (passfile.py), only here for
    # what must be given it explicitly (a pooler's configuration); never shown.
    server_password: str | None = field(default=None, repr=False)
    # On a Citus cluster: its nodes and the coordinator's maintenance URL (file_database).
    citus_nodes: citus_testdb.CitusNodes | None = None
    server_url: str | None = None

    def migrate(self) -> None:
        migrate(self.target, self.migrations, self.settings)
        self.migrated = True
        if self.distributed:
            self.commit_fixtures()

    @property
    def url(self) -> str:
        return self.target.url

    def preamble(self) -> list[tuple[str, str]]:
        """pgTAP + test helpers + fixtures, run inside every test transaction (only the
        search path once the fixtures are committed: commit_fixtures)."""
        if self.fixtures_committed:
            return [("search path", SEARCH_PATH + (CITUS_SEQUENTIAL if self.distributed else ""))]
        return [("pgtap", PGTAP_SETUP + SEARCH_PATH), *fixture_files()]

    @contextmanager
    def file_database(self) -> Iterator[str]:
        """The database one pgTAP file runs on: on a Citus cluster a fresh copy of the test
        database (dropped afterwards), since there the file's statements commit one by one
        (tap.run_tap_sql's statement_transactions); elsewhere the test database itself."""
        if not (self.distributed and self.citus_nodes and self.server_url):
            yield self.url
            return
        source = str(conninfo_to_dict(self.url)["dbname"])
        name = f"{source}_{secrets.token_hex(3)}"
        citus_testdb.copy_distributed_database(self.server_url, source, name, self.citus_nodes)
        try:
            yield with_database(self.server_url, name)
        finally:
            citus_testdb.drop_distributed_database(self.server_url, name, self.citus_nodes)

    def commit_fixtures(self) -> None:
        """Load pgTAP, the helpers and the fixtures once, committed, for every suite after
        (a Citus cluster: a placement written by one user cannot be read by another in the
        same transaction, so the fixtures cannot be written inside each test's)."""
        commit_fixtures(self.url)
        self.fixtures_committed = True


@dataclass(frozen=True)
class ServerState:
    """What a test run may leave on a server it does not own: cluster-wide roles (the
    migrations create anon/authenticated/service_role where they do not exist) and pg_cron
    jobs (scheduled for databases that are dropped afterwards)."""

    roles: frozenset[str]
    last_cron_job: int | None  # None: no pg_cron in the admin database

    @classmethod
    def read(cls, admin: psycopg.Connection) -> ServerState:
        roles = frozenset(r[0] for r in admin.execute("select rolname from pg_catalog.pg_roles"))
        has_cron = admin.execute("select to_regclass('cron.job') is not null").fetchone() == (True,)
        last = admin.execute("select coalesce(max(jobid), 0) from cron.job").fetchone() if has_cron else None
        return cls(roles, int(last[0]) if last else None)

    def restore(self, admin: psycopg.Connection) -> None:
        """Unschedule the jobs added since for databases that no longer exist, then drop the
        roles added since (a role still used elsewhere on the server refuses, and stays)."""
        if self.last_cron_job is not None:
            admin.execute("select cron.unschedule(jobid) from cron.job where jobid > %s "
                          "and database not in (select datname from pg_catalog.pg_database)",
                          (self.last_cron_job,))
        added = [r[0] for r in admin.execute("select rolname from pg_catalog.pg_roles")
                 if r[0] not in self.roles]
        for role in added:
            try:
                with admin.transaction():
                    admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
            except psycopg.Error:
                continue


def provision(server: DatabaseTarget | None = None, *, migrate_schema: bool = True,
              with_pgtap: bool = True, profile: str | None = None) -> TestDatabase:
    """A fresh database on `server` (dropped at exit), or, without one, a throwaway
    embedded server (deleted at exit); migrated unless told otherwise. `profile`: the
    rendering (default: test_settings's)."""
    settings = test_settings(profile)
    migrations = render_all(settings)
    sharedir: Path | None = None
    password: str | None = None
    nodes: citus_testdb.CitusNodes | None = None
    if server is not None:
        url, password = password_out_of_url(server.url)
        server = replace(server, url=url)
        name = f"neurant_test_{secrets.token_hex(4)}"
        # Profile citus on a Citus coordinator with workers: a distributed database.
        nodes = citus_testdb.cluster_nodes(server.url) if settings.profile == "citus" else None
        template = os.environ.get("NEURANT_TEST_TEMPLATE")
        with server.connect() as admin:
            before = ServerState.read(admin)
            if template:  # a database prepared (and migrated) elsewhere, copied as it is
                admin.execute(sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template)))
            elif not nodes:
                admin.execute(f'create database "{name}"')
        # the roles the migrations create propagate to every worker, but their drop from the
        # coordinator's maintenance database does not (not distributed objects there)
        worker_states: dict[tuple[str, int], ServerState] = {}
        if nodes and not template:
            for node in nodes.workers:
                with connect(citus_testdb.node_url(server.url, node)) as admin:
                    worker_states[node] = ServerState.read(admin)
            citus_testdb.create_distributed_database(server.url, name, nodes)
        target = server.with_database(name, Source.THROWAWAY_DATABASE)

        def drop() -> None:
            try:
                if nodes:
                    citus_testdb.drop_distributed_database(server.url, name, nodes)
                with server.connect() as admin:
                    if not nodes:
                        admin.execute(f'drop database if exists "{name}" with (force)')
                    before.restore(admin)
                for node, state in worker_states.items():
                    with connect(citus_testdb.node_url(server.url, node)) as admin:
                        state.restore(admin)
            except Exception:
                pass

        atexit.register(drop)
    else:
        target = DatabaseTarget(start_throwaway().url(), Source.THROWAWAY_SERVER)
        sharedir = embedded_sharedir()
    if server is not None and os.environ.get("NEURANT_TEST_TEMPLATE"):
        reapply_database_level(target, migrations)
    if with_pgtap:
        with target.connect() as conn:
            pgtap.ensure_available(conn, embedded_sharedir=sharedir)
    db = TestDatabase(target, settings, migrations, sharedir, server_password=password,
                      distributed=bool(server is not None and nodes), citus_nodes=nodes,
                      server_url=server.url if server is not None and nodes else None)
    if migrate_schema:
        db.migrate()
    return db
