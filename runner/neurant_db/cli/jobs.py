"""`neurant-db jobs ...`: the data-lifecycle jobs (a thin click layer over jobs.py and
cold_storage.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from ..cold_storage import cold_export
from ..errors import NeurantError
from ..jobs import (
    JOB_NAMES,
    SCHEDULES,
    JobResult,
    Progress,
    call_job,
    crontab_lines,
    job_connection,
    recent_runs,
    schedule_with_pg_cron,
    unschedule_pg_cron,
    vacuum_after_retention,
)
from ..lifecycle_demo import live_counts, load_demo
from ..testdb import provision
from .context import Context, pass_ctx
from .json_output import emit, json_option


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
@pass_ctx
def jobs_run(c: Context, name: str, dry_run: bool, batch_size: int, max_batches: int | None,
             as_of: datetime | None, days: int, day_from: datetime | None, day_to: datetime | None,
             out: Path | None, no_vacuum: bool, as_json: bool, quiet: bool) -> None:
    """Run one lifecycle job now, with a progress bar and a summary (rows per table, rows/s).

    \b
    Example:
      neurant-db jobs run archive --batch-size 500
      neurant-db jobs run analytics --from 2026-11-01 --to 2026-11-24
      neurant-db jobs run retention --dry-run
    """
    when = as_of.replace(tzinfo=UTC) if as_of else None
    bar = _Bar(enabled=not (quiet or as_json or dry_run), label=f"{name}")
    target = c.target()
    extra: list[str] = []
    try:
        if name == "cold-export":
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
@pass_ctx
def jobs_status(c: Context, job: str | None, limit: int, as_json: bool) -> None:
    """Show the latest job runs (private.job_runs): status, batches, counts, errors.

    \b
    Example:
      neurant-db jobs status --job archive --limit 5
    """
    conn = job_connection(c.target(), "jobs status")
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
@pass_ctx
def jobs_schedule(c: Context, print_only: bool, dry_run: bool, cold_dir: str,
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
    if print_only:
        for line in crontab_lines(cold_dir):
            click.echo(line)
        return
    target = c.target()
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
@pass_ctx
def jobs_unschedule(c: Context, dry_run: bool, cron_database: str | None) -> None:
    """Remove this database's jobs from pg_cron (only the ones `jobs schedule` registered).

    \b
    Example:
      neurant-db jobs unschedule
    """
    target = c.target()
    conn = job_connection(target, "jobs unschedule", migrated=None)
    try:
        plan, removed = unschedule_pg_cron(target, conn, dry_run=dry_run, cron_database=cron_database)
    finally:
        conn.close()
    if not removed:
        click.echo(f"no neurant-db jobs of database {plan.database} in pg_cron (database {plan.cron_database})")
    for name in removed:
        click.echo(f"{'would unschedule' if dry_run else 'unscheduled'} {name}")


@jobs.command("bench")
@click.option("--companies", type=click.IntRange(1), default=20, show_default=True)
@click.option("--conversations", type=click.IntRange(1), default=500, show_default=True,
              help="Closed conversations per company (all older than a year).")
@click.option("--messages", type=click.IntRange(1), default=10, show_default=True,
              help="Messages per conversation.")
@click.option("--batch-size", type=click.IntRange(1, 100000), default=1000, show_default=True)
@json_option()
@pass_ctx
def jobs_bench(c: Context, companies: int, conversations: int, messages: int, batch_size: int,
               as_json: bool) -> None:
    """Measure archival throughput (rows moved per second) on a demo data set, on a
    throwaway server (or a throwaway database on --database-url's server).

    \b
    Example:
      neurant-db jobs bench --companies 20 --conversations 500 --messages 10
    """
    db = provision(c.named_server(), migrate_schema=True, with_pgtap=False)
    conn = job_connection(db.target, "jobs bench")
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
