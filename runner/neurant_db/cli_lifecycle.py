"""`neurant-db jobs ...` and `neurant-db archive ...`: the data-lifecycle commands
(a thin click layer over jobs.py and cold_storage.py)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from .cli_json import emit, json_option
from .database import DatabaseTarget, resolve_target
from .jobs import JOB_NAMES, JobResult, Progress


def _target(ctx: click.Context) -> DatabaseTarget:
    obj: Any = ctx.find_root().obj
    if obj is not None and hasattr(obj, "target"):
        target: DatabaseTarget = obj.target()
        return target
    return resolve_target(None)


class _Bar:
    """A click progress bar fed by the jobs' progress notices (rows done of rows expected)."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self.bar: Any = None
        self.shown = 0

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=max(p.total_rows, 1), label=self.label,
                                         show_pos=True, show_percent=True)
            self.bar.__enter__()
        step = p.done_rows - self.shown
        if step > 0:
            self.bar.update(step)
            self.shown = p.done_rows

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _summary(result: JobResult, extra: list[str] | None = None) -> None:
    verb = "would touch" if result.dry_run else "rows"
    click.echo(f"job {result.job} run {result.run_id}: {result.status}"
               f"{' (dry run)' if result.dry_run else ''}, {result.batches} batch(es), "
               f"{result.seconds:.2f} s")
    for table, n in sorted(result.rows.items()):
        click.echo(f"  {table:<40} {n:>10} {verb if result.dry_run else ''}".rstrip())
    if not result.dry_run and result.total_rows:
        click.echo(f"  total {result.total_rows} rows, {result.rows_per_second:,.0f} rows/s")
    for line in extra or []:
        click.echo(f"  {line}")
    if result.error:
        click.echo(f"  error: {result.error}")


@click.group()
def jobs() -> None:
    """Data-lifecycle jobs: archive, cold-export, retention, analytics, metrics.

    \b
    Example:
      neurant-db jobs run archive --dry-run
      neurant-db jobs run cold-export --out /var/lib/neurant/cold
      neurant-db jobs status
    """


@jobs.command("list")
@json_option()
def jobs_list(as_json: bool) -> None:
    """List the jobs, what they do and their default schedule.

    \b
    Example:
      neurant-db jobs list
      neurant-db jobs list --json | jq '.[].job'
    """
    from .jobs import SCHEDULES

    about = {
        "archive": "closed conversations (+ rows), integration logs, analytics past archive_after_days -> archive",
        "cold-export": "archived data older than cold_after_days -> verified files (--out), then deleted",
        "retention": "anything older than delete_after_days deleted (live or archived, audit >= 7 y) unless held",
        "analytics": "re-compute public.analytics_daily for the last --days days (idempotent)",
        "metrics": "sample database size, connections, table growth, per-tenant storage",
    }
    if as_json:
        emit([{"job": name, "schedule": SCHEDULES[name], "about": about[name]} for name in JOB_NAMES])
        return
    for name in JOB_NAMES:
        click.echo(f"{name:<12} {SCHEDULES[name]:<14} {about[name]}")


@jobs.command("run")
@click.argument("name", type=click.Choice(JOB_NAMES))
@click.option("--dry-run", is_flag=True, help="Count what the job would do; change nothing.")
@click.option("--batch-size", type=click.IntRange(1, 100000), default=1000, show_default=True,
              help="Conversations (or rows) per transaction.")
@click.option("--max-batches", type=click.IntRange(1), default=None,
              help="Stop after this many batches (the next run continues).")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Compute ages as of this (UTC) time (default: now). A future time is only honoured "
                   "for a superuser session; any other role is clamped to now.")
@click.option("--days", type=click.IntRange(1, 3660), default=3, show_default=True,
              help="analytics: refresh this many days up to today.")
@click.option("--from", "day_from", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="analytics: first day to refresh.")
@click.option("--to", "day_to", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="analytics: last day to refresh.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="cold-export: directory the exports are written to (required).")
@click.option("--no-vacuum", is_flag=True, help="retention: skip the VACUUM of the tables it deleted from.")
@json_option("Machine-readable summary.")
@click.option("--quiet", is_flag=True, help="No progress bar (for cron).")
@click.pass_context
def jobs_run(ctx: click.Context, name: str, dry_run: bool, batch_size: int, max_batches: int | None,
             as_of: datetime | None, days: int, day_from: datetime | None, day_to: datetime | None,
             out: Path | None, no_vacuum: bool, as_json: bool, quiet: bool) -> None:
    """Run one lifecycle job now, with a progress bar and a summary (rows per table, rows/s).

    \b
    Example:
      neurant-db jobs run archive --batch-size 500
      neurant-db jobs run analytics --from 2026-11-01 --to 2026-11-24
      neurant-db jobs run retention --dry-run
    """
    from datetime import UTC

    from .errors import NeurantError
    from .jobs import call_job, job_connection, vacuum_after_retention

    when = as_of.replace(tzinfo=UTC) if as_of else None
    bar = _Bar(enabled=not (quiet or as_json or dry_run), label=f"{name}")
    target = _target(ctx)
    extra: list[str] = []
    try:
        if name == "cold-export":
            from .cold_storage import cold_export

            if out is None:
                raise NeurantError("cold-export needs --out DIR", hint="e.g. --out /var/lib/neurant/cold")
            run = cold_export(target, out, as_of=when, batch_size=batch_size, max_batches=max_batches,
                              dry_run=dry_run, on_progress=bar)
            result = run.job
            extra = [f"export {e.path} ({e.total_rows} rows)" for e in run.exports]
            result.extra["exports"] = [str(e.path) for e in run.exports]
        else:
            conn = job_connection(target, f"jobs {name}", own_session=True)
            try:
                result = call_job(conn, name, dry_run=dry_run, batch_size=batch_size, max_batches=max_batches,
                                  as_of=when, days=days,
                                  day_from=_date(day_from), day_to=_date(day_to), on_progress=bar)
                if name == "retention" and not dry_run and not no_vacuum:
                    vacuumed = vacuum_after_retention(conn, result.rows)
                    if vacuumed:
                        extra.append(f"vacuumed {', '.join(vacuumed)}")
                    result.extra["vacuumed"] = vacuumed
            finally:
                conn.close()
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        _summary(result, extra)


def _date(value: datetime | None) -> date | None:
    return value.date() if value else None


@jobs.command("status")
@click.option("--job", type=click.Choice(JOB_NAMES), default=None, help="Only this job.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option()
@click.pass_context
def jobs_status(ctx: click.Context, job: str | None, limit: int, as_json: bool) -> None:
    """Show the latest job runs (private.job_runs): status, batches, counts, errors.

    \b
    Example:
      neurant-db jobs status --job archive --limit 5
    """
    from .jobs import job_connection, recent_runs

    conn = job_connection(_target(ctx), "jobs status")
    try:
        runs = recent_runs(conn, limit, job)
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(runs, indent=2, default=str))
        return
    for r in runs:
        rows = sum(int(v) for v in (r["rows"] or {}).values())
        click.echo(f"{r['run_id']:>6} {r['job']:<12} {r['status']:<11} {'dry ' if r['dry_run'] else ''}"
                   f"{r['started_at']}  {r['batches']} batch(es) {rows} rows"
                   + (f"  error: {r['error']}" if r["error"] else ""))
    if not runs:
        click.echo("no job runs yet")


@jobs.command("schedule")
@click.option("--print", "print_only", is_flag=True,
              help="Print crontab lines for a host without pg_cron instead of registering.")
@click.option("--dry-run", is_flag=True, help="Show the pg_cron jobs that would be registered.")
@click.option("--cold-dir", default="/var/lib/neurant/cold", show_default=True,
              help="Export directory used in the printed cold-export line.")
@click.option("--cron-database", metavar="NAME", default=None,
              help="pg_cron's database (default: its cron.database_name, read from the server; "
                   "postgres when the login may not read it).")
@click.pass_context
def jobs_schedule(ctx: click.Context, print_only: bool, dry_run: bool, cold_dir: str,
                  cron_database: str | None) -> None:
    """Register the SQL jobs with pg_cron, to run in this database (idempotent by job name).

    pg_cron lives in one database of the server (cron.database_name, usually
    postgres); the jobs are registered there with cron.schedule_in_database and run
    in the application database as the login that scheduled them (which must bypass
    RLS). Re-running updates the jobs by name. The cold export writes files, so it
    is never a pg_cron job: run it from cron, a systemd timer or a Kubernetes
    CronJob (docs/lifecycle.md).

    \b
    Example:
      neurant-db jobs schedule
      neurant-db jobs schedule --dry-run --cron-database postgres
      neurant-db jobs schedule --print | crontab -
    """
    from .jobs import crontab_lines, job_connection, schedule_with_pg_cron

    if print_only:
        for line in crontab_lines(cold_dir):
            click.echo(line)
        return
    target = _target(ctx)
    conn = job_connection(target, "jobs schedule", migrated=False)
    try:
        plan = schedule_with_pg_cron(target, conn, dry_run=dry_run, cron_database=cron_database)
    finally:
        conn.close()
    click.echo(f"pg_cron in database {plan.cron_database}; the jobs run in database {plan.database} "
               f"as {plan.username}")
    for name, when, command in plan.jobs:
        click.echo(f"{'would schedule' if dry_run else 'scheduled'} {name:<18} {when:<14} {command}")
    click.echo(f"cold-export is not a pg_cron job: {crontab_lines(cold_dir)[1]}")


@jobs.command("unschedule")
@click.option("--dry-run", is_flag=True, help="Show the pg_cron jobs that would be removed.")
@click.option("--cron-database", metavar="NAME", default=None,
              help="pg_cron's database (default: its cron.database_name).")
@click.pass_context
def jobs_unschedule(ctx: click.Context, dry_run: bool, cron_database: str | None) -> None:
    """Remove this database's jobs from pg_cron (only the ones `jobs schedule` registered).

    \b
    Example:
      neurant-db jobs unschedule
    """
    from .jobs import job_connection, unschedule_pg_cron

    target = _target(ctx)
    conn = job_connection(target, "jobs unschedule", migrated=None)
    try:
        plan, removed = unschedule_pg_cron(target, conn, dry_run=dry_run, cron_database=cron_database)
    finally:
        conn.close()
    if not removed:
        click.echo(f"no neurant-db jobs of database {plan.database} in pg_cron (database {plan.cron_database})")
    for name in removed:
        click.echo(f"{'would unschedule' if dry_run else 'unscheduled'} {name}")


@click.group()
def archive() -> None:
    """Cold-storage exports and legal holds.

    \b
    Example:
      neurant-db archive verify /var/lib/neurant/cold/20261125T020000Z-1a2b3c4d
      neurant-db archive restore /var/lib/neurant/cold/20261125T020000Z-1a2b3c4d
      neurant-db archive hold --company UUID --reason "case 42" --by legal@example.com
    """


@archive.command("verify")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
def archive_verify(directory: Path) -> None:
    """Check an export against its manifest (checksums, row counts, JSON lines).

    \b
    Example:
      neurant-db archive verify /var/lib/neurant/cold/20261125T020000Z-1a2b3c4d
    """
    from .cold_storage import verify_export

    counts = verify_export(directory)
    for table, n in counts.items():
        click.echo(f"  {table:<40} {n:>10}")
    click.echo(f"ok: {sum(counts.values())} rows match the manifest")


@archive.command("restore")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--dry-run", is_flag=True, help="Verify and count; restore nothing.")
@click.option("--allow-unrecorded", is_flag=True,
              help="Restore an export that private.cold_exports does not list (e.g. into another database).")
@click.pass_context
def archive_restore(ctx: click.Context, directory: Path, dry_run: bool, allow_unrecorded: bool) -> None:
    """Read a cold export back into the archive tables (verified first; all or nothing).

    \b
    Example:
      neurant-db archive restore /var/lib/neurant/cold/20261125T020000Z-1a2b3c4d
    """
    from .cold_storage import restore_export

    counts = restore_export(_target(ctx), directory, dry_run=dry_run, allow_unrecorded=allow_unrecorded)
    for table, n in counts.items():
        click.echo(f"  {table:<40} {n:>10}")
    click.echo(f"{'would restore' if dry_run else 'restored'} {sum(counts.values())} rows from {directory}")


@archive.command("hold")
@click.option("--company", required=True, help="Company id (uuid).")
@click.option("--conversation", default=None, help="Conversation id (uuid); omit to hold the whole company.")
@click.option("--reason", required=True, help="Why (case, request, regulation).")
@click.option("--by", "set_by", required=True, help="Who sets the hold (person, e-mail, ticket).")
@click.pass_context
def archive_hold(ctx: click.Context, company: str, conversation: str | None, reason: str, set_by: str) -> None:
    """Place a legal hold: nothing it covers is archived, exported-and-deleted or deleted.

    \b
    Example:
      neurant-db archive hold --company 2f0c... --reason "litigation 2026-17" --by legal@neurant.io
    """
    import psycopg

    from .jobs import _raise_for, job_connection

    conn = job_connection(_target(ctx), "legal hold")
    try:
        row = conn.execute(
            "insert into public.legal_holds (company_id, conversation_id, reason, set_by) "
            "values (%s, %s, %s, %s) returning id", (company, conversation, reason, set_by)).fetchone()
    except psycopg.Error as exc:
        _raise_for(exc, "hold")
        raise
    finally:
        conn.close()
    click.echo(f"legal hold {row[0] if row else '?'} set")


@archive.command("release")
@click.argument("hold_id")
@click.option("--company", required=True, help="Company id of the hold.")
@click.option("--by", "released_by", required=True, help="Who releases it.")
@click.pass_context
def archive_release(ctx: click.Context, hold_id: str, company: str, released_by: str) -> None:
    """Release a legal hold (kept as history).

    \b
    Example:
      neurant-db archive release 7d1e... --company 2f0c... --by legal@neurant.io
    """
    import psycopg

    from .errors import NeurantError
    from .jobs import _raise_for, job_connection

    conn = job_connection(_target(ctx), "legal hold")
    try:
        cur = conn.execute(
            "update public.legal_holds set released_at = now(), released_by = %s "
            "where company_id = %s and id = %s and released_at is null", (released_by, company, hold_id))
    except psycopg.Error as exc:
        _raise_for(exc, "release")
        raise
    finally:
        conn.close()
    if cur.rowcount != 1:
        raise NeurantError(f"no active legal hold {hold_id} in company {company}")
    click.echo(f"legal hold {hold_id} released")


@archive.command("holds")
@click.option("--all", "show_all", is_flag=True, help="Include released holds.")
@json_option()
@click.pass_context
def archive_holds(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List legal holds (active ones unless --all).

    \b
    Example:
      neurant-db archive holds --all
      neurant-db archive holds --json | jq '.[] | select(.active)'
    """
    from .jobs import job_connection

    conn = job_connection(_target(ctx), "legal holds")
    try:
        rows = conn.execute(
            "select id, company_id, conversation_id, reason, set_by, created_at, released_at "
            "from public.legal_holds where %s or released_at is null order by created_at", (show_all,)).fetchall()
    finally:
        conn.close()
    if as_json:
        emit([{"id": r[0], "company_id": r[1], "conversation_id": r[2], "reason": r[3], "set_by": r[4],
               "created_at": r[5], "released_at": r[6], "active": r[6] is None} for r in rows])
        return
    for r in rows:
        scope = f"conversation {r[2]}" if r[2] else "whole company"
        state = f"released {r[6]:%Y-%m-%d}" if r[6] else "ACTIVE"
        click.echo(f"{r[0]}  company {r[1]}  {scope}  {state}  by {r[4]}: {r[3]}")
    if not rows:
        click.echo("no legal holds")


@jobs.command("bench")
@click.option("--companies", type=click.IntRange(1), default=20, show_default=True)
@click.option("--conversations", type=click.IntRange(1), default=500, show_default=True,
              help="Closed conversations per company (all older than a year).")
@click.option("--messages", type=click.IntRange(1), default=10, show_default=True,
              help="Messages per conversation.")
@click.option("--batch-size", type=click.IntRange(1, 100000), default=1000, show_default=True)
@json_option()
@click.pass_context
def jobs_bench(ctx: click.Context, companies: int, conversations: int, messages: int, batch_size: int,
               as_json: bool) -> None:
    """Measure archival throughput (rows moved per second) on a demo data set, on a
    throwaway server (or a throwaway database on --database-url's server).

    \b
    Example:
      neurant-db jobs bench --companies 20 --conversations 500 --messages 10
    """
    from .jobs import call_job, job_connection
    from .lifecycle_demo import live_counts, load_demo
    from .testdb import provision

    obj: Any = ctx.find_root().obj
    db = provision(getattr(obj, "database_url", None), migrate_schema=True, with_pgtap=False)
    target = DatabaseTarget(db.url)
    conn = job_connection(target, "jobs bench")
    try:
        before = load_demo(conn, companies=companies, conversations=conversations, messages=messages)
        result = call_job(conn, "archive", batch_size=batch_size)
        after = live_counts(conn)
    finally:
        conn.close()
    lost = sum(before.values()) - sum(after.values())
    if as_json:
        click.echo(json.dumps({**result.as_dict(), "before": before, "after": after, "rows_lost": lost}, indent=2))
        return
    _summary(result)
    click.echo(f"  rows in live + archive: {sum(before.values())} before, {sum(after.values())} after "
               f"({'nothing lost' if lost == 0 else f'{lost} LOST'})")
