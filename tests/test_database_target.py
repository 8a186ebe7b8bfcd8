"""One object for the database a command talks to: every command receives the same
`DatabaseTarget` from the CLI's context, which knows where its connection string came
from, shows it only without the password, and reaches other databases of its server the
same way. No connection is made here: resolving a target only parses its string."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.cli.context import Context, pass_ctx
from neurant_db.database import DatabaseTarget, Source

SECRET = "Tq4-never-shown"
DSN = f"host=db.example dbname=app user=owner password={SECRET}"
URI = f"postgresql://owner:{SECRET}@db.example:5432/app"
LIBPQ_VARIABLES = ("DATABASE_URL", "PGHOST", "PGHOSTADDR", "PGSERVICE", "PGPASSWORD")


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[DatabaseTarget | None, Context]]]:
    """A command `probe` under the real root group that records what the context hands it
    (the server named, without resolving to the local embedded one), nothing in the
    environment naming a server."""
    for name in LIBPQ_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    got: list[tuple[DatabaseTarget | None, Context]] = []

    @click.command("probe")
    @pass_ctx
    def probe(c: Context) -> None:
        got.append((c.named_server(), c))

    cli.add_command(probe)
    try:
        yield got
    finally:
        cli.commands.pop("probe")


def test_a_url_given_with_the_option_is_said_to_come_from_the_option(
        seen: list[tuple[DatabaseTarget | None, Context]]) -> None:
    result = CliRunner().invoke(cli, ["--database-url", DSN, "probe"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    target, _c = seen[0]
    assert target is not None and target.source == Source.OPTION and "dbname=app" in target.url


def test_a_url_from_the_environment_is_said_to_come_from_database_url(
        seen: list[tuple[DatabaseTarget | None, Context]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", URI)
    assert CliRunner().invoke(cli, ["probe"], catch_exceptions=False).exit_code == 0
    target, _c = seen[0]
    assert target is not None and target.source == Source.ENVIRONMENT and target.url == URI


def test_the_pg_variables_name_a_server_of_their_own(
        seen: list[tuple[DatabaseTarget | None, Context]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "db.example")
    assert CliRunner().invoke(cli, ["probe"], catch_exceptions=False).exit_code == 0
    target, _c = seen[0]
    assert target == DatabaseTarget("", Source.LIBPQ)


def test_with_nothing_naming_a_server_the_throwaway_commands_get_none(
        seen: list[tuple[DatabaseTarget | None, Context]]) -> None:
    assert CliRunner().invoke(cli, ["probe"], catch_exceptions=False).exit_code == 0
    assert seen[0][0] is None


def test_the_context_masks_the_password_of_the_url_it_was_given(
        seen: list[tuple[DatabaseTarget | None, Context]]) -> None:
    assert CliRunner().invoke(cli, ["--database-url", URI, "probe"], catch_exceptions=False).exit_code == 0
    target, c = seen[0]
    assert target is not None
    assert SECRET not in target.redacted and "host=db.example" in target.redacted
    assert c.scrub(f"could not connect with {SECRET}") == "could not connect with ***"


def test_another_database_of_a_target_keeps_its_server_and_says_what_it_is() -> None:
    server = DatabaseTarget(URI, Source.OPTION, notice="using something")
    scratch = server.with_database("neurant_test_1", Source.THROWAWAY_DATABASE)
    assert scratch.url == f"postgresql://owner:{SECRET}@db.example:5432/neurant_test_1"
    assert scratch.source == Source.THROWAWAY_DATABASE and scratch.notice is None
    assert SECRET not in scratch.redacted and "dbname=neurant_test_1" in scratch.redacted
    assert server.with_database("other").source == Source.OPTION


def test_only_an_embedded_server_is_local() -> None:
    assert DatabaseTarget("host=/tmp", Source.LOCAL_SERVER).is_local
    assert DatabaseTarget("host=/tmp", Source.THROWAWAY_SERVER).is_local
    assert not DatabaseTarget(URI, Source.OPTION).is_local
