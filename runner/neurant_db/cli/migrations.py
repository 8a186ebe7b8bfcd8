"""`neurant-db migrate|rollback|status|preflight|repair|baseline`: the migration ledger
commands (a thin click layer over migrate.py, preflight.py and online.py)."""

from __future__ import annotations

import json
import sys

import click

from .. import migrate as m
from ..database import DatabaseTarget
from ..errors import NeurantError
from ..online import invalid_indexes
from ..preflight import preflight as run_preflight
from ..render import Migration, render_all
from ..schema_diff import checked_baseline
from .context import Context, pass_ctx, reference_server, reference_url_option
from .json_output import emit, json_option


def _progress(verb: str, target: DatabaseTarget | None = None):  # type: ignore[no-untyped-def]
    said: list[bool] = []

    def report(kind: str, m: Migration) -> None:
        if not said and target is not None:
            click.echo(f"{'migrating' if kind == 'apply' else 'rolling back'} {target.redacted}")
            said.append(True)
        click.echo(f"  {verb} {m.id}")

    return report


@click.command()
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


@click.command()
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


def stdin_is_terminal() -> bool:
    """Whether a person can answer a prompt (looked up at call time: tests stand in for one)."""
    return sys.stdin.isatty()


def _confirm_drop(target: DatabaseTarget, yes: bool, interactive: bool = True):  # type: ignore[no-untyped-def]
    def confirm(losing: list[tuple[str, int]]) -> bool:
        if yes:
            return True
        if not interactive or not stdin_is_terminal():
            return False
        click.echo(f"rolling back {target.redacted} drops tables holding rows:")
        for table, rows in losing:
            click.echo(f"  {table:<40} {rows:>10} row(s)")
        return click.confirm("drop them and their rows?", default=False)

    return confirm


@click.command()
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


@click.command()
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


@click.command()
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


@click.command()
@click.argument("version", type=int)
@click.option("--reason", default="baseline", show_default=True, help="Recorded in the ledger history.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--lock-timeout", type=float, default=30.0, show_default=True)
@reference_url_option()
@click.option("--no-schema-check", is_flag=True,
              help="Mark the migrations applied without checking that their objects exist.")
@json_option()
@pass_ctx
def baseline(c: Context, version: int, reason: str, yes: bool, lock_timeout: float, reference_url: str | None,
             no_schema_check: bool, as_json: bool) -> None:
    """Adopt an existing database built without the runner: mark every migration up to
    VERSION applied (recorded as baselined) without running it. Refuses a database
    whose ledger already has rows, and one that lacks objects those migrations define
    (compared with a reference build in a scratch database, see docs/doctor.md).

    \b
    Example:
      neurant-db baseline 0300 --reason "built by hand from 0.1.0's SQL" --yes
    """
    settings = c.settings()
    target = c.target()
    if not yes:
        if as_json:
            raise NeurantError("baseline --json needs --yes (there is no prompt under --json)",
                               hint="check the database and VERSION, then pass --yes")
        click.confirm(f"mark every migration up to {version:04d} applied on {target.redacted} "
                      "without running it?", abort=True)
    done = checked_baseline(target, render_all(settings), settings, version=version, reason=reason,
                            lock_timeout_s=lock_timeout, reference_server=reference_server(reference_url),
                            check=not no_schema_check)
    if as_json:
        emit({"database": target.redacted, "baselined": [x.id for x in done]})
        return
    click.echo(f"baselined {len(done)} migration(s) up to {done[-1].id} on {target.redacted}")


def _report_invalid_indexes(target: DatabaseTarget, *, err: bool) -> None:
    """Invalid indexes a failed no-transaction migration left (online.py), with the fix."""
    with target.connect(purpose="status") as conn:
        for index in invalid_indexes(conn):
            click.secho(f"warning: {index.describe()}", fg="yellow", err=err)
