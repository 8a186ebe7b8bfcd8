"""What the root command line hands every command: the settings and the database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..database import DatabaseTarget, Source, named_target, resolve_target, scrub
from ..render import Migration, render_all
from ..settings import Settings, load_settings


class Context:
    """The root options of one run. `target()` is the database the command talks to
    (resolved once, on first use: the local embedded server is only started when nothing
    names a server); `named_server()` is the server a command that makes throwaway
    databases (bench, jobs bench, test) makes them on, None for a throwaway embedded one."""

    def __init__(self, database_url: str | None, url_source: Source, config: Path | None, profile: str | None,
                 embedding_dimensions: int | None) -> None:
        self.database_url = database_url
        self.url_source = url_source
        self.config = config
        self.overrides = {"profile": profile, "embedding_dimensions": embedding_dimensions}
        self._target: DatabaseTarget | None = None

    def settings(self) -> Settings:
        return load_settings(self.config, **self.overrides)

    def migrations(self) -> list[Migration]:
        return render_all(self.settings())

    def target(self) -> DatabaseTarget:
        if self._target is None:
            self._target = resolve_target(self.database_url, self.url_source)
            if self._target.notice:
                click.echo(self._target.notice, err=True)
        return self._target

    def named_server(self) -> DatabaseTarget | None:
        return named_target(self.database_url, self.url_source)

    def scrub(self, text: str) -> str:
        """`text` with every password of the connection string given to this run masked."""
        return scrub(text, self.database_url or "")


F = TypeVar("F", bound=Callable[..., Any])

pass_ctx = click.make_pass_decorator(Context)


def reference_url_option() -> Callable[[F], F]:
    return click.option(
        "--reference-url", default=None, metavar="URL", envvar="NEURANT_REFERENCE_URL",
        help="Server where the schema check builds the applied migrations in a scratch database "
             "(default: the target's server; needs CREATEDB there).")


def reference_server(url: str | None) -> DatabaseTarget | None:
    """The server of --reference-url, or None for the target's own."""
    return named_target(url, Source.OPTION) if url else None
