"""Run the data-lifecycle jobs (SQL procedures) and read their ledger.

Each job is a procedure (`public.job_archive`, `public.job_retention`,
`public.job_analytics`, `public.job_metrics`) that COMMITs after every batch,
so it is CALLed on an autocommit connection. Progress arrives as NOTICEs
(`neurant.progress {json}`); the outcome is read back from `private.job_runs`.
The cold export is not a procedure (it writes files): see cold_storage.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from .database import DatabaseTarget, require_own_session
from .errors import NeurantError
from .migrate import require_migrated

JOB_NAMES = ("archive", "cold-export", "retention", "analytics", "metrics")
SQL_JOBS = {
    "archive": "public.job_archive",
    "retention": "public.job_retention",
    "analytics": "public.job_analytics",
    "metrics": "public.job_metrics",
}
# Tables a retention run may leave dead tuples in: vacuumed afterwards.
RETENTION_TABLES = (
    "public.message_reactions", "public.knowledge_queries", "public.hitl_escalations", "public.messages",
    "public.conversations", "public.integration_logs", "public.analytics_daily", "public.audit_logs",
    "public.system_metrics", "archive.message_reactions_archived", "archive.knowledge_queries_archived",
    "archive.hitl_escalations_archived", "archive.messages_archived", "archive.conversations_archived",
    "archive.integration_logs_archived", "archive.analytics_archived",
)
# Default schedules (pg_cron / crontab syntax, UTC).
SCHEDULES = {
    "archive": "15 2 * * *",
    "cold-export": "45 2 * * 0",
    "retention": "30 3 * * 0",
    "analytics": "5 * * * *",
    "metrics": "*/15 * * * *",
}
PROGRESS_PREFIX = "neurant.progress "


class JobError(NeurantError):
    """A lifecycle job failed (its committed batches stay done)."""

    exit_code = 1


class JobLocked(NeurantError):
    """Another run of the job (or of a job sharing its lock) is in progress."""

    exit_code = 4


@dataclass
class Progress:
    step: str
    done: dict[str, int]
    total: dict[str, int]

    @property
    def done_rows(self) -> int:
        return sum(self.done.values())

    @property
    def total_rows(self) -> int:
        return sum(self.total.values())


@dataclass
class JobResult:
    run_id: int
    job: str
    status: str
    dry_run: bool
    batches: int
    rows: dict[str, int]
    seconds: float
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(v for k, v in self.rows.items() if k != "days")

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "job": self.job, "status": self.status, "dry_run": self.dry_run,
                "batches": self.batches, "rows": self.rows, "total_rows": self.total_rows,
                "seconds": round(self.seconds, 3), "rows_per_second": round(self.rows_per_second, 1),
                "error": self.error, **self.extra}


ProgressFn = Callable[[Progress], None]


def require_job_procedures(conn: psycopg.Connection) -> None:
    """The job procedures pg_cron would call exist in this database (else: run migrate first)."""
    missing = [name for name in SQL_JOBS.values()
               if not conn.execute("select exists (select 1 from pg_catalog.pg_proc p"
                                   " join pg_catalog.pg_namespace n on n.oid = p.pronamespace"
                                   " where p.prokind = 'p' and n.nspname || '.' || p.proname = %s)",
                                   (name,)).fetchone()[0]]  # type: ignore[index]
    if missing:
        raise NeurantError(f"the job procedures {', '.join(missing)} are missing: run migrate first")


def job_connection(target: DatabaseTarget, purpose: str, *, migrated: bool | None = True,
                   own_session: bool = False) -> psycopg.Connection:
    """An autocommit connection whose role bypasses RLS (switching to service_role if needed).
    migrated=False (scheduling): only the job procedures must exist, not the whole schema;
    None (unscheduling): nothing is required of the schema. own_session: refuse a
    transaction pooler first (a job procedure COMMITs between batches, which needs one
    server session for the whole CALL, and sets session state)."""
    conn = target.connect(autocommit=True, purpose=purpose)
    if own_session:
        try:
            require_own_session(conn, target.url, "jobs run")
        except BaseException:
            conn.close()
            raise
    # pg_temp listed last: a temp table or domain left on this session (by an end user,
    # through a pooler) never shadows pg_catalog's types or a relation the jobs name.
    conn.execute("set search_path = pg_catalog, pg_temp")
    try:
        if migrated:
            require_migrated(conn)
        elif migrated is False:
            require_job_procedures(conn)
    except NeurantError:
        conn.close()
        raise
    row = conn.execute("select rolsuper or rolbypassrls from pg_roles where rolname = current_user").fetchone()
    if not (row and row[0]):
        try:
            conn.execute("set role service_role")
        except psycopg.Error:
            conn.close()
            raise JobError(
                "the database user neither bypasses row level security nor may act as service_role",
                hint="run the jobs as the database owner or a member of service_role") from None
    return conn


def _progress_handler(on_progress: ProgressFn | None) -> Callable[[psycopg.errors.Diagnostic], None]:
    def handle(diag: psycopg.errors.Diagnostic) -> None:
        msg = diag.message_primary or ""
        if on_progress is None or not msg.startswith(PROGRESS_PREFIX):
            return
        try:
            data = json.loads(msg[len(PROGRESS_PREFIX):])
        except ValueError:
            return
        on_progress(Progress(str(data.get("step", "")), _ints(data.get("done")), _ints(data.get("total"))))

    return handle


def _ints(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int | float)}


def raise_job_error(exc: psycopg.Error, job: str) -> None:
    """Raise the job's SQL error as JobLocked (another run holds the job's lock) or JobError."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip() or exc.__class__.__name__
    if diag.sqlstate == "55P03":
        raise JobLocked(message, hint=diag.message_hint) from None
    raise JobError(f"{job}: {message}", hint=diag.message_hint) from None


def call_job(conn: psycopg.Connection, job: str, *, dry_run: bool = False, batch_size: int | None = None,
             max_batches: int | None = None, as_of: datetime | None = None, days: int | None = None,
             day_from: date | None = None, day_to: date | None = None,
             on_progress: ProgressFn | None = None) -> JobResult:
    """CALL one job procedure on an autocommit connection and return its ledger row."""
    if job not in SQL_JOBS:
        raise JobError(f"unknown SQL job {job!r}", hint=f"jobs: {', '.join(SQL_JOBS)}")
    args: dict[str, Any] = {"p_dry_run": dry_run}
    if job in ("archive", "retention"):
        args.update(p_batch_size=batch_size or 1000, p_max_batches=max_batches, p_as_of=as_of)
    elif job == "analytics":
        args.update(p_days=days or 3, p_from=day_from, p_to=day_to)
    # Literals, not bind parameters: the statement is sent as a simple query, the form
    # in which a procedure may COMMIT on every server version and pooler.
    parts = [sql.SQL("{} => {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in args.items()]
    stmt = sql.SQL("call {}(p_run_id => null, {})").format(
        sql.SQL(SQL_JOBS[job]), sql.SQL(", ").join(parts))
    handler = _progress_handler(on_progress)
    conn.add_notice_handler(handler)
    try:
        row = conn.execute(stmt).fetchone()
    except psycopg.Error as exc:
        raise_job_error(exc, job)
        raise  # unreachable
    finally:
        conn.remove_notice_handler(handler)
    run_id = int(row[0]) if row else 0
    result = fetch_run(conn, run_id)
    if result is None:
        raise JobError(f"{job}: run {run_id} left no row in private.job_runs")
    return result


def fetch_run(conn: psycopg.Connection, run_id: int) -> JobResult | None:
    row = conn.execute(
        """select id, job, status, dry_run, batches, rows_moved, error,
                  extract(epoch from coalesce(finished_at, clock_timestamp()) - started_at)::float8
           from private.job_runs where id = %s""", (run_id,)).fetchone()
    if row is None:
        return None
    return JobResult(run_id=row[0], job=row[1], status=row[2], dry_run=row[3], batches=row[4],
                     rows={str(k): int(v) for k, v in (row[5] or {}).items()}, error=row[6],
                     seconds=float(row[7] or 0.0))


def recent_runs(conn: psycopg.Connection, limit: int = 20, job: str | None = None) -> list[dict[str, Any]]:
    rows = conn.execute(
        """select id, job, status, dry_run, started_at, finished_at, batches, rows_moved, error
           from private.job_runs where %(job)s::text is null or job = %(job)s::text
           order by id desc limit %(limit)s""", {"job": job, "limit": limit}).fetchall()
    return [{"run_id": r[0], "job": r[1], "status": r[2], "dry_run": r[3],
             "started_at": r[4].isoformat() if r[4] else None,
             "finished_at": r[5].isoformat() if r[5] else None, "batches": r[6],
             "rows": r[7], "error": r[8]} for r in rows]


def vacuum_after_retention(conn: psycopg.Connection, rows: dict[str, int]) -> list[str]:
    """VACUUM the tables a retention run deleted from, so the dead tuples can be reused."""
    done = []
    for table in RETENTION_TABLES:
        if rows.get(table, 0) > 0:
            schema, name = table.split(".")
            conn.execute(sql.SQL("vacuum (analyze) {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
            done.append(table)
    return done


# --- scheduling ---------------------------------------------------------------------------

def schedule_command(job: str) -> str:
    """The SQL a scheduler runs for a job (pg_cron command)."""
    return {
        "archive": "call public.job_archive()",
        "retention": "call public.job_retention()",
        "analytics": "call public.job_analytics(p_days => 3)",
        "metrics": "call public.job_metrics()",
    }[job]


def crontab_lines(cold_dir: str = "/var/lib/neurant/cold") -> list[str]:
    """Crontab lines for hosts without pg_cron (DATABASE_URL in the crontab's environment)."""
    lines = []
    for job in JOB_NAMES:
        extra = f" --out {cold_dir}" if job == "cold-export" else ""
        lines.append(f"{SCHEDULES[job]}  neurant-db jobs run {job}{extra} --quiet")
    return lines


def has_pg_cron(conn: psycopg.Connection) -> bool:
    return conn.execute("select exists (select 1 from pg_extension where extname = 'pg_cron')").fetchone() == (True,)


# pg_cron lives in one database of the server (its `cron.database_name`, usually `postgres`)
# and runs each job in the database and as the role its cron.job row names.
PG_CRON_DEFAULT_DATABASE = "postgres"
NOT_INSTALLED_HINT = ("schedule `neurant-db jobs run NAME` with cron, a systemd timer or a Kubernetes CronJob "
                      "(docs/lifecycle.md); `neurant-db jobs schedule --print` prints crontab lines")
CRON_GRANTS_HINT = ("a superuser, in pg_cron's database, grants: usage on schema cron, execute on "
                    "cron.schedule_in_database(text,text,text,text,text,boolean) and "
                    "cron.alter_job(bigint,text,text,text,text,boolean) (docs/lifecycle.md, pg_cron)")


@dataclass(frozen=True)
class CronPlan:
    """The pg_cron jobs of one application database."""

    database: str        # where the jobs run: the application database
    cron_database: str   # where pg_cron lives (cron.database_name)
    username: str        # the role pg_cron runs them as: the login that schedules them
    jobs: list[tuple[str, str, str]]  # (pg_cron job name, schedule, command)


def cron_job_name(job: str, database: str, cron_database: str) -> str:
    """`neurant-archive` in pg_cron's own database, `neurant-archive@app` for another one, so
    the application databases of one server (prod, staging) each keep their own jobs."""
    return f"neurant-{job}" if database == cron_database else f"neurant-{job}@{database}"


def find_cron_database(conn: psycopg.Connection, override: str | None = None) -> str:
    """The database pg_cron lives in, seen from the application database's session."""
    if override:
        return override
    if has_pg_cron(conn):  # CREATE EXTENSION pg_cron only works in cron.database_name
        return str(conn.execute("select current_database()").fetchone()[0])  # type: ignore[index]
    try:
        row = conn.execute("select current_setting('cron.database_name', true)").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        # a superuser-only setting: a non-superuser cannot read it; pg_cron's default then
        return PG_CRON_DEFAULT_DATABASE
    if row is None or not row[0]:
        raise NeurantError("pg_cron is not installed on this server (cron.database_name is not set: "
                           "pg_cron is not in shared_preload_libraries)", hint=NOT_INSTALLED_HINT)
    return str(row[0])


def plan_pg_cron(conn: psycopg.Connection, cron_database: str | None = None) -> CronPlan:
    """What `jobs schedule` registers for the database of `conn` (a job_connection)."""
    row = conn.execute("""select current_database(), session_user,
                                 coalesce((select rolsuper or rolbypassrls from pg_roles
                                           where rolname = session_user), false)""").fetchone()
    assert row is not None
    database, login, bypasses = str(row[0]), str(row[1]), bool(row[2])
    if not bypasses:
        raise NeurantError(
            f"pg_cron runs each job as the role that scheduled it, and {login} does not bypass row level "
            "security (the jobs would be refused)",
            hint="schedule the jobs as the database owner (BYPASSRLS) or a superuser")
    cron_db = find_cron_database(conn, cron_database)
    planned = [(cron_job_name(job, database, cron_db), SCHEDULES[job], schedule_command(job)) for job in SQL_JOBS]
    return CronPlan(database, cron_db, login, planned)


def _cron_connection(target: DatabaseTarget, plan: CronPlan, purpose: str) -> psycopg.Connection:
    """A session in pg_cron's database (one transaction) as the same login."""
    cron = target if plan.cron_database == plan.database else target.with_database(plan.cron_database)
    conn = cron.connect(autocommit=False, purpose=purpose)
    if not has_pg_cron(conn):
        conn.close()
        raise NeurantError(
            f"pg_cron is not installed in database {plan.cron_database} (pg_cron's cron.database_name): "
            f"create extension pg_cron there (superuser), or name pg_cron's database with --cron-database",
            hint=NOT_INSTALLED_HINT)
    return conn


def _cron_call(conn: psycopg.Connection, query: str, params: tuple[Any, ...]) -> Any:
    try:
        return conn.execute(query, params).fetchall()
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InternalError) as exc:
        raise NeurantError(f"pg_cron refused: {(exc.diag.message_primary or str(exc)).strip()}",
                           hint=CRON_GRANTS_HINT) from None


def schedule_with_pg_cron(target: DatabaseTarget, conn: psycopg.Connection, *, dry_run: bool = False,
                          cron_database: str | None = None) -> CronPlan:
    """Register (or update, by job name) the SQL jobs with pg_cron, in one transaction of
    pg_cron's database, to run in the database of `conn`. The cold export needs files: not here."""
    plan = plan_pg_cron(conn, cron_database)
    with _cron_connection(target, plan, "jobs schedule") as cron:
        if dry_run:
            return plan
        existing = {str(r[0]): int(r[1]) for r in _cron_call(
            cron, "select jobname, jobid from cron.job where username = current_user and jobname = any(%s)",
            ([name for name, _, _ in plan.jobs],))}
        for name, when, command in plan.jobs:
            if name in existing:  # schedule_in_database's upsert keeps the old database and active flag
                _cron_call(cron, "select cron.alter_job(%s, %s, %s, %s, null, true)",
                           (existing[name], when, command, plan.database))
            else:  # username null: the current user (pg_cron 1.4 refuses even one's own name from a non-superuser)
                _cron_call(cron, "select cron.schedule_in_database(%s, %s, %s, %s, null, true)",
                           (name, when, command, plan.database))
        cron.commit()
    return plan


def unschedule_pg_cron(target: DatabaseTarget, conn: psycopg.Connection, *, dry_run: bool = False,
                       cron_database: str | None = None) -> tuple[CronPlan, list[str]]:
    """Remove this database's neurant-db jobs from pg_cron (the names `jobs schedule` gives)."""
    plan = plan_pg_cron(conn, cron_database)
    with _cron_connection(target, plan, "jobs unschedule") as cron:
        rows = _cron_call(
            cron, "select jobid, jobname from cron.job where username = current_user and jobname = any(%s) "
                  "order by jobname", ([name for name, _, _ in plan.jobs],))
        if not dry_run:
            for jobid, _name in rows:
                _cron_call(cron, "select cron.unschedule(%s::bigint)", (jobid,))
            cron.commit()
    return plan, [str(r[1]) for r in rows]
