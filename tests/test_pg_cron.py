"""`neurant-db jobs schedule` on a real pg_cron: Debian's PostgreSQL 15 with Debian's
postgresql-15-cron, pg_cron living in `postgres` (its cron.database_name) while the
application database is another one, as on every managed server.

The full schema needs pgvector, which is not packaged for PostgreSQL 15 here, so the
application databases hold stand-in procedures with the jobs' names and arguments: what
is proven is the scheduling (cron.job rows naming the right database, command and role,
re-running updates them, unschedule removes only ours), and that each registered command
runs as-is in the database and as the role pg_cron will use. pg_cron 1.4 (Debian 12) has
no seconds schedules, so no test waits a minute for pg_cron's own run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.jobs import SCHEDULES, SQL_JOBS, schedule_command

from .debian_pg import DebianServer, debian_bin, debian_postgres, ensure_debian_package, missing_server_reason

MAJOR = 15
PG_CRON_FILES = (debian_bin(MAJOR).parent / "lib" / "pg_cron.so",
                 Path(f"/usr/share/postgresql/{MAJOR}/extension/pg_cron.control"))

pytestmark = pytest.mark.skipif(missing_server_reason(MAJOR) is not None,
                                reason=missing_server_reason(MAJOR) or "")

STAND_INS = """
create table public.calls (job text not null, called_by name not null default current_user,
                           db name not null default current_database());
create procedure public.job_archive() language sql as $$ insert into public.calls (job) values ('archive') $$;
create procedure public.job_retention() language sql as $$ insert into public.calls (job) values ('retention') $$;
create procedure public.job_analytics(p_days integer) language sql
  as $$ insert into public.calls (job) values ('analytics ' || p_days) $$;
create procedure public.job_metrics() language sql as $$ insert into public.calls (job) values ('metrics') $$;
"""


@pytest.fixture(scope="module")
def pg() -> Iterator[DebianServer]:
    reason = ensure_debian_package(f"postgresql-{MAJOR}-cron", PG_CRON_FILES)
    if reason:
        pytest.skip(reason)
    conf = {"shared_preload_libraries": "'pg_cron'", "cron.database_name": "'postgres'",
            "cron.use_background_workers": "on", "max_worker_processes": "20"}
    with debian_postgres(MAJOR, conf) as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("create extension pg_cron")
            conn.execute(STAND_INS)
            for db in ("app", "app_staging"):
                conn.execute(f"create database {db}")
        for db in ("app", "app_staging"):
            with psycopg.connect(server.url(db), autocommit=True) as conn:
                conn.execute(STAND_INS)
        yield server


@pytest.fixture
def cron(pg: DebianServer) -> Iterator[psycopg.Connection[Any]]:
    """A superuser session in pg_cron's database; every test starts without jobs."""
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("select cron.unschedule(jobid) from cron.job")
        yield conn


def jobs_of(cron: psycopg.Connection[Any], database: str) -> dict[str, tuple[Any, ...]]:
    rows = cron.execute("select jobname, jobid, schedule, command, database, username, active from cron.job "
                        "where database = %s order by jobname", (database,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def schedule(pg: DebianServer, database: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--database-url", pg.url(database), "jobs", *args])
    return result


def test_jobs_schedule_registers_the_jobs_in_pg_crons_database_to_run_in_the_application_database(
        pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    result = schedule(pg, "app", "schedule")
    assert result.exit_code == 0, result.output
    jobs = jobs_of(cron, "app")
    assert sorted(jobs) == sorted(f"neurant-{job}@app" for job in SQL_JOBS)
    for job in SQL_JOBS:
        _jobid, when, command, database, username, active = jobs[f"neurant-{job}@app"]
        assert (when, command, database, username, active) == (
            SCHEDULES[job], schedule_command(job), "app", "postgres", True)
    assert "database app" in result.output and "postgres" in result.output
    assert jobs_of(cron, "postgres") == {}


def test_each_registered_command_runs_as_is_in_its_database_as_its_role(
        pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    assert schedule(pg, "app", "schedule").exit_code == 0
    for _jobid, _when, command, database, username, _active in jobs_of(cron, "app").values():
        # what pg_cron's background worker does: connect to `database` as `username`, run `command`
        with psycopg.connect(pg.url(database, username), autocommit=True) as conn:
            conn.execute(command)
    with psycopg.connect(pg.url("app"), autocommit=True) as conn:
        calls = conn.execute("select job, called_by, db from public.calls order by job").fetchall()
        conn.execute("truncate public.calls")
    assert calls == [("analytics 3", "postgres", "app"), ("archive", "postgres", "app"),
                     ("metrics", "postgres", "app"), ("retention", "postgres", "app")]


def test_scheduling_again_updates_the_existing_jobs_by_name(pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    assert schedule(pg, "app", "schedule").exit_code == 0
    before = jobs_of(cron, "app")
    jobid = before["neurant-archive@app"][0]
    cron.execute("select cron.alter_job(%s, schedule => '1 1 * * *', command => 'select 1', active => false)",
                 (jobid,))
    result = schedule(pg, "app", "schedule")
    assert result.exit_code == 0, result.output
    assert jobs_of(cron, "app") == before, "same job ids, schedule, command and active flag restored"


def test_two_application_databases_on_one_server_keep_their_own_jobs(
        pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    assert schedule(pg, "app", "schedule").exit_code == 0
    assert schedule(pg, "app_staging", "schedule").exit_code == 0
    assert len(jobs_of(cron, "app")) == len(jobs_of(cron, "app_staging")) == len(SQL_JOBS)
    cron.execute("select cron.schedule('nightly-vacuum', '0 4 * * *', 'vacuum')")
    result = schedule(pg, "app", "unschedule")
    assert result.exit_code == 0, result.output
    assert jobs_of(cron, "app") == {}
    assert len(jobs_of(cron, "app_staging")) == len(SQL_JOBS), "the other database's jobs stay"
    assert "nightly-vacuum" in jobs_of(cron, "postgres"), "a job that is not ours stays"
    again = schedule(pg, "app", "unschedule")
    assert again.exit_code == 0 and "no neurant-db jobs" in again.output


def test_the_application_database_may_be_pg_crons_own(pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    result = schedule(pg, "postgres", "schedule")
    assert result.exit_code == 0, result.output
    assert sorted(jobs_of(cron, "postgres")) == sorted(f"neurant-{job}" for job in SQL_JOBS)


def test_dry_run_names_both_databases_and_registers_nothing(pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    result = schedule(pg, "app", "schedule", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would schedule" in result.output and "neurant-archive@app" in result.output
    assert "pg_cron in database postgres" in result.output
    assert cron.execute("select count(*) from cron.job").fetchone() == (0,)


def test_a_role_that_does_not_bypass_rls_is_refused_before_anything_is_registered(
        pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    # pg_cron runs a job as the role that scheduled it; that role must bypass RLS to run the jobs
    cron.execute("do $$ begin if not exists (select from pg_roles where rolname = 'service_role') then "
                 "create role service_role nologin bypassrls; end if; "
                 "if not exists (select from pg_roles where rolname = 'app_api') then "
                 "create role app_api login in role service_role; end if; end $$")
    result = CliRunner().invoke(cli, ["--database-url", pg.url("app", "app_api"), "jobs", "schedule"])
    assert result.exit_code == 1, result.output
    assert "bypass" in result.output and "Traceback" not in result.output
    assert cron.execute("select count(*) from cron.job").fetchone() == (0,)


def test_pg_cron_loaded_but_not_created_in_its_database_is_one_clear_error(
        pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    cron.execute("drop extension pg_cron")
    try:
        result = schedule(pg, "app", "schedule")
    finally:
        cron.execute("create extension pg_cron")
    assert result.exit_code == 1, result.output
    assert "create extension pg_cron" in result.output and "postgres" in result.output


def _owner(cron: psycopg.Connection[Any], name: str, grants: bool) -> None:
    """A non-superuser owner as on a managed server: LOGIN BYPASSRLS, may run the jobs."""
    cron.execute(f"do $$ begin if not exists (select from pg_roles where rolname = '{name}') then "
                 f"create role {name} login bypassrls; end if; end $$")
    with psycopg.connect(cron.info.dsn.replace("dbname=postgres", "dbname=app"), autocommit=True) as app:
        app.execute(f"grant all on table public.calls to {name}")
        app.execute(f"grant execute on all procedures in schema public to {name}")
    if grants:
        cron.execute(f"grant usage on schema cron to {name}")
        cron.execute(f"grant execute on function cron.schedule_in_database(text,text,text,text,text,boolean), "
                     f"cron.alter_job(bigint,text,text,text,text,boolean) to {name}")


def test_a_non_superuser_owner_with_pg_crons_grants_schedules_and_reschedules_its_jobs(
        pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    # it may not read cron.database_name (superuser-only): pg_cron's default database is assumed
    _owner(cron, "app_owner", grants=True)
    run = CliRunner().invoke
    for _ in range(2):
        result = run(cli, ["--database-url", pg.url("app", "app_owner"), "jobs", "schedule"])
        assert result.exit_code == 0, result.output
    jobs = jobs_of(cron, "app")
    assert sorted(jobs) == sorted(f"neurant-{job}@app" for job in SQL_JOBS)
    assert {row[4] for row in jobs.values()} == {"app_owner"}
    for _jobid, _when, command, database, username, _active in jobs.values():
        with psycopg.connect(pg.url(database, username), autocommit=True) as conn:
            conn.execute(command)
    result = run(cli, ["--database-url", pg.url("app", "app_owner"), "jobs", "unschedule"])
    assert result.exit_code == 0, result.output
    assert jobs_of(cron, "app") == {}


def test_an_owner_without_pg_crons_grants_gets_the_grants_to_ask_for(
        pg: DebianServer, cron: psycopg.Connection[Any]) -> None:
    _owner(cron, "app_owner_nogrant", grants=False)
    result = CliRunner().invoke(cli, ["--database-url", pg.url("app", "app_owner_nogrant"), "jobs", "schedule"])
    assert result.exit_code == 1, result.output
    assert "cron.schedule_in_database" in result.output and "Traceback" not in result.output
    assert cron.execute("select count(*) from cron.job").fetchone() == (0,)
