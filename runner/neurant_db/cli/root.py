"""The root `neurant-db` group: its options, and errors reported as one clear message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import psycopg
from click.core import ParameterSource

from .. import __version__
from ..database import Source
from ..errors import NeurantError
from ..settings import PROFILES
from .context import Context
from .json_output import emit_error, error_code, wants_json


class NeurantGroup(click.Group):
    """Prints NeurantError as a clear message (no traceback) and exits with its code;
    under --json, as one {"error": {...}} object on stdout (json_output.py)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        if parent is None and os.environ.get("NO_COLOR"):  # https://no-color.org: no ANSI colours
            extra.setdefault("color", False)
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NeurantError as exc:
            if wants_json(ctx):
                emit_error(error_code(exc), _scrub(ctx, exc.message), exc.hint, exc.exit_code)
                ctx.exit(exc.exit_code)
            click.secho(f"error: {_scrub(ctx, exc.message)}", fg="red", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except psycopg.Error as exc:
            diag = exc.diag
            state = f"[{diag.sqlstate}] " if diag.sqlstate else ""
            text = _scrub(ctx, (diag.message_primary or str(exc)).strip())
            if wants_json(ctx):
                emit_error("database_error", f"{state}{text}", diag.message_hint, 1)
                ctx.exit(1)
            click.secho(f"error: database error: {state}{text}", fg="red", err=True)
            if diag.message_hint:
                click.echo(f"hint: {diag.message_hint}", err=True)
            ctx.exit(1)
        except click.ClickException as exc:
            if not wants_json(ctx):
                raise
            emit_error("usage_error", exc.format_message(), None, exc.exit_code)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if not wants_json(ctx):
                raise
            emit_error("internal_error", f"{type(exc).__name__}: {exc}",
                       "this is a bug in neurant-db: please report it with the command line", 1)
            ctx.exit(1)


def _scrub(ctx: click.Context, text: str) -> str:
    """No error line may show the password of the connection string given to this run."""
    return ctx.obj.scrub(text) if isinstance(ctx.obj, Context) else text


@click.group(cls=NeurantGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neurant-db")
@click.option("--database-url", envvar="DATABASE_URL", metavar="URL",
              help="Target database: a postgresql:// URI or a keyword DSN (default: DATABASE_URL, "
              "else libpq's PGHOST/PGSERVICE..., else the local embedded server).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Settings file (default: ./neurant-db.toml if present).")
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="vanilla: create roles and auth schema; supabase: they already exist; "
              "citus: like vanilla, in the shapes Citus accepts (docs/scale-out.md).")
@click.option("--embedding-dimensions", type=int, default=None,
              help="Dimension of document_chunks.embedding (default 1536).")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, config: Path | None, profile: str | None,
        embedding_dimensions: int | None) -> None:
    """neurant-db: NeurAnt's multi-tenant PostgreSQL schema and its migration runner.

    \b
    Example:
      neurant-db migrate --dry-run
      neurant-db --database-url postgresql://u:p@db:5432/app status --json
    """
    from_environment = ctx.get_parameter_source("database_url") == ParameterSource.ENVIRONMENT
    ctx.obj = Context(database_url, Source.ENVIRONMENT if from_environment else Source.OPTION, config, profile,
                      embedding_dimensions)
