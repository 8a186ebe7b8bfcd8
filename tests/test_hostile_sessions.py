"""Hostile sessions (issue 9, findings 1 and 7), played as an attacker would, on real
sessions: an end user (`authenticated`) plants temp objects on a session a pooled
backend later uses as service_role, or takes the advisory locks the jobs and the
migration runner use. Trusted code must ignore what the end user planted, and no end
user may block a job or a migration.

Proves rule: trusted-code-no-session-objects (docs/rules.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.jobs import JobError, call_job
from neurant_db.render import render_all
from neurant_db.testdb import TestDatabase

from .test_lifecycle_jobs import db, template  # noqa: F401  (migrated scratch database per test)

NEUR = 0x4E455552  # first key of the advisory locks the jobs and the runner used to take
ROLLUP_COLUMNS = (
    "company_id uuid, chatbot_id uuid, conversations_count integer, new_conversations_count integer, "
    "messages_count integer, end_user_messages_count integer, bot_messages_count integer, "
    "operator_messages_count integer, hitl_escalations integer, avg_processing_time_ms numeric(12, 2), "
    "positive_reactions integer, negative_reactions integer, knowledge_queries_count integer")


def _allow_temp(conn: psycopg.Connection, role: str) -> None:
    """As on a database whose owner could not revoke TEMPORARY (see docs/services.md)."""
    conn.execute(f'grant temporary on database "{conn.info.dbname}" to {role}')


@pytest.fixture
def pooled(db: str) -> Iterator[psycopg.Connection]:  # noqa: F811
    """One server session shared by an end user and the backend, as through a pooler.
    The attacker's loot table records every time planted code runs, and as whom."""
    conn = psycopg.connect(db, autocommit=True)
    _allow_temp(conn, "authenticated")
    conn.execute("set role authenticated")
    conn.execute("create temp table loot (ran_as text, credentials bigint)")
    conn.execute("grant all on pg_temp.loot to public")
    conn.execute(
        "create function pg_temp.steal() returns boolean language plpgsql as $$ begin "
        "insert into pg_temp.loot values (current_user, "
        "(select count(*) from private.integration_credentials)); return true; "
        "exception when others then insert into pg_temp.loot values (current_user, null); return true; end $$")
    conn.execute(
        "create function pg_temp.steal_trigger() returns trigger language plpgsql as $$ begin "
        "perform pg_temp.steal(); return null; end $$")
    try:
        yield conn
    finally:
        conn.close()


def _loot(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    conn.execute("reset role")
    return conn.execute("select ran_as, credentials from pg_temp.loot").fetchall()


def test_the_roll_up_never_uses_a_temp_table_an_end_user_planted(pooled: psycopg.Connection) -> None:
    pooled.execute(f"create temp table analytics_daily_rollup ({ROLLUP_COLUMNS})")
    pooled.execute("grant all on pg_temp.analytics_daily_rollup to public")
    pooled.execute("create trigger plant after insert or delete or truncate on pg_temp.analytics_daily_rollup "
                   "for each statement execute function pg_temp.steal_trigger()")
    pooled.execute("reset role")
    pooled.execute("set role service_role")  # the pooled backend takes the session over
    pooled.execute("call public.refresh_analytics_daily(current_date)")
    pooled.execute("call public.job_analytics(p_days => 2)")
    assert _loot(pooled) == []


@pytest.mark.parametrize("type_name", ["text", "uuid", "jsonb", "date", "timestamptz"])
def test_trusted_code_never_resolves_a_type_an_end_user_planted_in_pg_temp(
        pooled: psycopg.Connection, type_name: str) -> None:
    # A temp domain shadows the built-in type for unqualified names when pg_temp is searched
    # first (the default, and under search_path = ''); its check runs the attacker's code.
    pooled.execute(f"create domain pg_temp.{type_name} as pg_catalog.{type_name} check (pg_temp.steal())")
    pooled.execute("select private.get_user_company_id(), private.get_user_role()")  # definer helpers
    pooled.execute("reset role")
    pooled.execute("set role service_role")
    call_job(pooled, "metrics")
    call_job(pooled, "analytics", days=1)
    call_job(pooled, "archive", batch_size=10)
    call_job(pooled, "retention", batch_size=10)
    assert _loot(pooled) == []


def test_pg_temp_shadows_relations_and_types_unless_listed_last_but_never_functions_or_operators(
        db: str) -> None:  # noqa: F811
    """The server behaviour the rules above rest on (checked, not assumed)."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("create temp table pg_class (planted int)")  # same name as a catalog
        conn.execute("create domain pg_temp.text as pg_catalog.text check (value <> 'x')")
        conn.execute("create function pg_temp.now() returns timestamptz language sql "
                     "as $$ select 'epoch'::pg_catalog.timestamptz $$")
        conn.execute("create function pg_temp.neq(int, int) returns boolean language sql as 'select true'")
        conn.execute("create operator pg_temp.= (function = pg_temp.neq, leftarg = int, rightarg = int)")
        for path in ("''", '"$user", public'):
            conn.execute(f"set search_path = {path}")
            # relations and types: the unlisted pg_temp comes first
            assert conn.execute("select count(planted) from pg_class").fetchone() == (0,)
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute("select 'x'::text")
        conn.execute("set search_path = pg_catalog, pg_temp")
        assert conn.execute("select 'x'::text").fetchone() == ("x",)  # listed last: pg_catalog wins
        assert conn.execute("select count(relname) > 0 from pg_class").fetchone() == (True,)
        conn.execute("set search_path = pg_temp, pg_catalog")
        # functions and operators: pg_temp is never searched, even when listed first
        assert conn.execute("select extract(year from now()) > 2000, 1 = 2").fetchone() == (True, False)

@pytest.mark.parametrize("job", ["archive", "retention", "analytics", "metrics"])
def test_a_job_refuses_a_search_path_that_puts_a_schema_before_pg_catalog(db: str, job: str) -> None:  # noqa: F811
    # Procedures run on the caller's path (they COMMIT, so no SET clause): on a pooled
    # session another client may have left "public, pg_catalog", and an operator created
    # in public would then win over pg_catalog's (same signature, earlier on the path).
    with psycopg.connect(db, autocommit=True) as backend:
        backend.execute("set role service_role")
        backend.execute("set search_path = public, pg_catalog")
        with pytest.raises(JobError, match="refuse a search_path that puts public before pg_catalog"):
            call_job(backend, job)
        backend.execute("set search_path = pg_temp, pg_catalog, public")  # pg_temp: never for operators
        assert call_job(backend, job).status == "succeeded"

@pytest.mark.parametrize("role", ["authenticated", "anon"])
def test_end_users_cannot_create_temp_objects(neurant_db: TestDatabase, role: str) -> None:
    # The migrated test database itself: a database cloned from a template starts with
    # the default database privileges again (they are not part of the template).
    with psycopg.connect(neurant_db.url, autocommit=True) as conn:
        conn.execute(f"set role {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("create temp table plant (x int)")
        conn.execute("reset role")
        assert conn.execute("select has_database_privilege('public', current_database(), 'TEMPORARY')"
                            ).fetchone() == (False,)


@pytest.mark.parametrize("job, key", [("archive", 2), ("retention", 2), ("analytics", 3), ("metrics", 4)])
def test_an_end_user_holding_the_old_job_lock_key_does_not_block_the_job(
        db: str, job: str, key: int) -> None:  # noqa: F811
    with psycopg.connect(db, autocommit=True) as attacker:
        attacker.execute("set role authenticated")
        attacker.execute("select pg_advisory_lock(%s, %s)", (NEUR, key))
        with psycopg.connect(db, autocommit=True) as backend:
            assert call_job(backend, job).status == "succeeded"


def test_an_end_user_cannot_reach_the_job_runs_that_serialise_the_jobs(db: str) -> None:  # noqa: F811
    with psycopg.connect(db, autocommit=True) as attacker:
        attacker.execute("set role authenticated")
        for stmt in ("select 1 from private.job_runs for update",
                     "lock table private.job_runs in share mode",
                     "select private.job_start('archive', '{}'::jsonb, false)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), attacker.transaction():
                attacker.execute(stmt)


def test_an_end_user_holding_the_old_migration_lock_key_does_not_block_migrate(
        sql_tree: Path, scratch_db: str, neurant_db: TestDatabase) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as attacker:
        attacker.execute("set role authenticated")  # roles are cluster-wide (neurant_db made them)
        attacker.execute("select pg_advisory_lock(%s, 1)", (NEUR,))
        result = CliRunner().invoke(cli, ["--database-url", scratch_db, "migrate", "--lock-timeout", "0.5"])
        assert result.exit_code == 0, result.output


def test_an_end_user_cannot_reach_the_migration_lock(
        sql_tree: Path, scratch_db: str, neurant_db: TestDatabase) -> None:
    assert CliRunner().invoke(cli, ["--database-url", scratch_db, "migrate"]).exit_code == 0
    with psycopg.connect(scratch_db, autocommit=True) as attacker:
        attacker.execute("set role authenticated")
        for stmt in ("select 1 from neurant_meta.migration_lock for update",
                     "lock table neurant_meta.migration_lock in share mode"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), attacker.transaction():
                attacker.execute(stmt)


def test_the_temporary_revoke_is_skipped_with_a_notice_when_the_applier_does_not_own_the_database(
        scratch_db: str, neurant_db: TestDatabase) -> None:
    migration = next(m.apply_sql for m in render_all(neurant_db.settings) if m.id == "0590_database_privileges")
    notices: list[str] = []
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("drop role if exists h9_not_owner")
        conn.execute("create role h9_not_owner")
        try:
            conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
            conn.execute("set role h9_not_owner")
            conn.execute(migration)  # applies without error
            conn.execute("reset role")
            assert conn.execute("select has_database_privilege('public', current_database(), 'TEMPORARY')"
                                ).fetchone() == (True,)
        finally:
            conn.execute("reset role")
            conn.execute("drop role h9_not_owner")
    assert any("does not own database" in n for n in notices), notices
    assert any("may still create temporary objects" in n for n in notices), notices
