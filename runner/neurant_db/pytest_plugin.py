"""pytest plugin: collects pgTAP files (tests/pgtap/*.sql) and the generated
isolation matrix (tests/isolation/access_spec.toml) as pytest items.

A file is run once, on a fresh connection, when it is collected; each TAP
assertion becomes one test item named after its description (so JUnit shows
every rule), plus one item per file for the plan and SQL errors.

The server the test database is created on: the one `neurant-db test` registers
(`ServerChoice`), else what names one in the environment (DATABASE_URL, the PG*
variables; database.named_target), else a throwaway embedded server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .database import DatabaseTarget, named_target
from .errors import NeurantError
from .isolation import generate_matrix_sql
from .tap import TapAssertion, TapResult, run_tap_file, run_tap_sql
from .testdb import TestDatabase, provision, test_settings

_DB_KEY = pytest.StashKey[TestDatabase]()
_ERR_KEY = pytest.StashKey[str]()
_SERVER_KEY = pytest.StashKey[DatabaseTarget | None]()


class ServerChoice:
    """A plugin object for `pytest.main(plugins=[...])`: the server the caller chose
    (None: a throwaway embedded server), instead of the environment's."""

    def __init__(self, server: DatabaseTarget | None) -> None:
        self.server = server

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[_SERVER_KEY] = self.server


def _server(config: pytest.Config) -> DatabaseTarget | None:
    return config.stash[_SERVER_KEY] if _SERVER_KEY in config.stash else named_target()


def test_database(config: pytest.Config, *, migrated: bool = True) -> TestDatabase:
    """The session's test database (provisioned on first use, migrated when asked)."""
    if _ERR_KEY in config.stash:
        raise pytest.UsageError(config.stash[_ERR_KEY])
    try:
        if _DB_KEY not in config.stash:
            config.stash[_DB_KEY] = provision(_server(config), migrate_schema=False)
        db = config.stash[_DB_KEY]
        if migrated and not db.migrated:
            db.migrate()
    except NeurantError as exc:
        config.stash[_ERR_KEY] = f"test database set-up failed: {exc}"
        raise pytest.UsageError(config.stash[_ERR_KEY]) from None
    return db


@pytest.fixture(scope="session")
def neurant_db(request: pytest.FixtureRequest) -> TestDatabase:
    """The migrated test database shared by the session (superuser URL in .url)."""
    return test_database(request.config)


@pytest.fixture(scope="session")
def neurant_server(request: pytest.FixtureRequest) -> TestDatabase:
    """The session's test database, not necessarily migrated: for tests that only
    need a server to create scratch databases on."""
    return test_database(request.config, migrated=False)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".sql" and "pgtap" in file_path.parts:
        return PgTapFile.from_parent(parent, path=file_path)
    if file_path.suffix == ".sql" and file_path.parent.name == "citus" and test_settings().profile == "citus":
        return PgTapFile.from_parent(parent, path=file_path)  # tests/citus: profile citus only
    if file_path.name == "access_spec.toml":
        return IsolationMatrixFile.from_parent(parent, path=file_path)
    return None


class TapFailure(Exception):
    pass


class TapAssertionItem(pytest.Item):
    def __init__(self, *, assertion: TapAssertion, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.assertion = assertion
        if assertion.directive == "TODO":
            self.add_marker(pytest.mark.xfail(reason=assertion.reason or "TODO", strict=False))

    def runtest(self) -> None:
        a = self.assertion
        if a.directive == "SKIP":
            pytest.skip(a.reason or "skipped in pgTAP")
        if not a.ok:
            raise TapFailure("\n".join(a.diagnostics) or "not ok")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, TapFailure):
            return f"not ok {self.assertion.number} - {self.assertion.description}\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.assertion.number}: {self.assertion.description}"


class TapFileItem(pytest.Item):
    """Fails when the file as a whole is broken: SQL error, plan mismatch, bad TAP."""

    def __init__(self, *, result: TapResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result

    def runtest(self) -> None:
        r = self.result
        issues = ([r.error] if r.error else []) + r.problems
        if issues:
            tail = "\n".join(r.output[-15:])
            raise TapFailure("\n".join(issues) + (f"\n--- TAP output before it ---\n{tail}" if tail else ""))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, TapFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, "plan and SQL errors"


def _items(collector: pytest.File, result: TapResult) -> Iterator[pytest.Item]:
    yield TapFileItem.from_parent(collector, name="plan", result=result)
    for a in result.assertions:
        name = f"{a.number:04d} {a.description or '(no description)'}"
        yield TapAssertionItem.from_parent(collector, name=name, assertion=a)


class PgTapFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        db = test_database(self.config)
        with db.file_database() as url:  # on a Citus cluster a copy: each statement commits there
            result = run_tap_file(url, self.path, db.preamble(), statement_transactions=db.distributed)
        yield from _items(self, result)


class IsolationMatrixFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        db = test_database(self.config)
        sql = generate_matrix_sql(db.url, self.path)
        yield from _items(self, run_tap_sql(db.url, "isolation matrix", sql, db.preamble(),
                                            statement_transactions=db.distributed))
