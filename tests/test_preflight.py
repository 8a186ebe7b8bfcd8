"""Before anything is applied: pre-flight checks on the server and the applying role (every
problem at once, nothing applied), the non-superuser owner path (RDS/Supabase-like), and
commands that need a migrated database saying so instead of failing deep inside."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from neurant_db.cli import cli
from neurant_db.database import with_database
from neurant_db.testdb import TestDatabase, test_cli_args, test_settings

from .conftest import scratch_database
from .debian_pg import debian_postgres, missing_server_reason

PREFLIGHT_FAILED = 8


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--database-url", url, *args])


def as_user(url: str, user: str, database: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(url)
    login = f"{user}:{password}" if password else user
    netloc = f"{login}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port and parts.hostname else "")
    path = "/" + database if database else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path))


def applied(url: str) -> dict[str, object]:
    """What a run left behind: ledger rows, the auth schema, the client roles."""
    with psycopg.connect(url) as conn:
        meta = conn.execute("select to_regclass('neurant_meta.schema_migrations')").fetchone()
        rows = conn.execute("select count(*) from neurant_meta.schema_migrations").fetchone() if meta != (None,) \
            else (0,)
        return {
            "ledger_rows": rows[0] if rows else 0,
            "neurant_meta": conn.execute("select to_regnamespace('neurant_meta') is not null").fetchone(),
            "auth": conn.execute("select to_regnamespace('auth') is not null").fetchone(),
            "roles": [r[0] for r in conn.execute(
                "select rolname from pg_roles where rolname in ('anon', 'authenticated', 'service_role') "
                "order by 1")],
        }


NOTHING = {"ledger_rows": 0, "neurant_meta": (False,), "auth": (False,), "roles": []}


def test_preflight_reads_what_the_real_migrations_need_from_their_sql() -> None:
    """The checks follow the migrations: a new extension, schema or role shows up by itself."""
    from neurant_db.preflight import migration_needs
    from neurant_db.render import render_all
    from neurant_db.settings import Settings

    vanilla = migration_needs(render_all(Settings().validate()))
    assert vanilla.extensions == {"vector": ("extensions", "0020_extensions")}
    assert {r: bypass for r, (bypass, _by) in vanilla.roles.items()} == {
        "anon": False, "authenticated": False, "service_role": True, "neurant_member_delete": False}
    assert set(vanilla.schemas_created) == {"auth", "extensions", "private", "archive"}
    assert "public" in vanilla.schemas_used and "extensions" in vanilla.schemas_owned
    supabase = migration_needs(render_all(Settings(profile="supabase").validate()))
    # on Supabase only the owner of private.delete_rows (functions/0350) is the package's own
    assert set(supabase.roles) == {"neurant_member_delete"} and "auth" not in supabase.schemas_created


# --- a real Debian PostgreSQL 15 (no pgvector for 15 on this machine) -------------------

@pytest.fixture(scope="module")
def pg15() -> Iterator[str]:
    reason = missing_server_reason(15)
    if reason:
        pytest.skip(reason)
    with debian_postgres(15) as server:
        yield server.url()


def has_vector(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("select 1 from pg_available_extensions where name = 'vector'").fetchone() is not None


@pytest.fixture
def pg15_db(pg15: str) -> Iterator[str]:
    with scratch_database(pg15) as url:
        yield url


def test_migrate_on_pg15_without_pgvector_is_refused_before_anything_is_applied(pg15_db: str) -> None:
    if has_vector(pg15_db):
        pytest.skip("this PostgreSQL 15 has pgvector (postgresql-15-pgvector): no missing extension to show")
    result = run(pg15_db, "migrate")
    assert result.exit_code == PREFLIGHT_FAILED, result.output
    assert "extension vector is not available" in result.output
    assert "postgresql-15-pgvector" in result.output and "nothing was applied" in result.output
    assert "Traceback" not in result.output
    assert applied(pg15_db) == NOTHING
    dry = run(pg15_db, "migrate", "--dry-run")
    assert dry.exit_code == PREFLIGHT_FAILED and "extension vector" in dry.output


def test_preflight_lists_every_missing_right_of_a_weak_role_at_once(pg15: str, pg15_db: str) -> None:
    with psycopg.connect(pg15, autocommit=True) as conn:
        conn.execute("drop role if exists weak_owner; create role weak_owner login")
    try:
        result = run(as_user(pg15_db, "weak_owner"), "preflight")
        assert result.exit_code == PREFLIGHT_FAILED, result.output
        for check in ("[extension.vector]", "[role.bypassrls]", "[database.create]", "[schema.create]",
                      "[role.createrole]"):
            assert check in result.output, check
        assert "fix: as a superuser: alter role weak_owner bypassrls;" in result.output
        assert "grant create on schema public to weak_owner;" in result.output
        migrate = run(as_user(pg15_db, "weak_owner"), "migrate")
        assert migrate.exit_code == PREFLIGHT_FAILED and "5 problem(s)" in migrate.output, migrate.output
        assert applied(pg15_db) == NOTHING
    finally:
        with psycopg.connect(pg15, autocommit=True) as conn:
            conn.execute("drop role weak_owner")


def test_on_pg15_an_owner_with_createrole_still_needs_an_admin_for_service_role(
        pg15: str, pg15_db: str) -> None:
    database = urlsplit(pg15_db).path.lstrip("/")
    with psycopg.connect(pg15, autocommit=True) as conn:
        conn.execute("drop role if exists app_owner; create role app_owner login bypassrls createrole")
        conn.execute(f'alter database "{database}" owner to app_owner')
    try:
        report = json.loads(run(as_user(pg15_db, "app_owner"), "preflight", "--json").output)
        errors = {c["check"]: c for c in report["checks"] if c["level"] == "error"}
        assert set(errors) == {"extension.vector", "role.createrole"}, errors
        assert "service_role" in errors["role.createrole"]["message"]
        assert "create role service_role nologin noinherit bypassrls;" in errors["role.createrole"]["fix"]
        with psycopg.connect(pg15, autocommit=True) as conn:  # the admin follows the fix
            conn.execute("create role service_role nologin noinherit bypassrls")
        report = json.loads(run(as_user(pg15_db, "app_owner"), "preflight", "--json").output)
        assert {c["check"] for c in report["checks"] if c["level"] == "error"} <= {"extension.vector"}
        first = run(as_user(pg15_db, "app_owner"), "migrate", "--to", "10")  # needs no extension
        assert first.exit_code == 0, first.output
        assert applied(pg15_db)["roles"] == ["anon", "authenticated", "service_role"]
    finally:
        with psycopg.connect(pg15, autocommit=True) as conn:
            conn.execute(f'drop database "{database}" with (force)')
            conn.execute("drop role if exists anon, authenticated, service_role; drop role app_owner")


def test_profile_supabase_on_a_plain_server_is_refused(pg15_db: str) -> None:
    result = run(pg15_db, "--profile", "supabase", "preflight")
    assert result.exit_code == PREFLIGHT_FAILED
    assert "[profile.supabase]" in result.output and "role anon" in result.output
    assert "schema auth" in result.output and "use profile vanilla" in result.output


def test_profile_vanilla_on_a_server_with_supabase_roles_is_a_warning(pg15: str, pg15_db: str) -> None:
    with psycopg.connect(pg15, autocommit=True) as conn:
        conn.execute("create role supabase_admin nologin")
    try:
        report = json.loads(run(pg15_db, "preflight", "--json").output)
    finally:
        with psycopg.connect(pg15, autocommit=True) as conn:
            conn.execute("drop role supabase_admin")
    assert {(c["level"], c["check"]) for c in report["checks"]} == (
        {("warning", "profile.vanilla")} | (set() if has_vector(pg15_db) else {("error", "extension.vector")}))


# --- the embedded server -----------------------------------------------------------------

def test_profile_vanilla_on_a_database_that_has_an_auth_schema_is_refused(plain_scratch_db: str) -> None:
    with psycopg.connect(plain_scratch_db, autocommit=True) as conn:
        conn.execute("create schema auth; create table auth.users (id uuid primary key)")
    result = run(plain_scratch_db, "--profile", "vanilla", "migrate")
    assert result.exit_code == PREFLIGHT_FAILED, result.output
    assert "[profile.vanilla]" in result.output and "--profile supabase" in result.output
    with psycopg.connect(plain_scratch_db) as conn:
        assert conn.execute("select to_regnamespace('neurant_meta')").fetchone() == (None,)


ADMIN_ONCE = """
create role {owner} login bypassrls createrole;
create database {db} owner {owner};
"""
ADMIN_IN_DATABASE = """
create schema if not exists extensions authorization {owner};
create extension vector with schema extensions;
do $$ begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit; end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls; end if;
end $$;
grant anon, authenticated, service_role to {owner} with admin option;
do $$ begin
  if not exists (select 1 from pg_roles where rolname = 'neurant_member_delete') then
    create role neurant_member_delete nologin inherit in role authenticated; end if;
end $$;
grant neurant_member_delete to {owner} with admin option;
"""


def test_a_non_superuser_owner_migrates_passes_doctor_and_runs_the_rls_helpers(
        neurant_server: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/deploy.md, step by step: an admin's one-time SQL, then migrate as the owner."""
    if test_settings().profile == "supabase":
        pytest.skip("docs/deploy.md's non-superuser owner is a plain server's deploy; on Supabase, postgres "
                    "migrates (tests/test_supabase_suite.py)")
    monkeypatch.chdir(tmp_path)
    owner, db = f"app_owner_{secrets.token_hex(3)}", f"app_{secrets.token_hex(3)}"
    admin = neurant_server.url
    with psycopg.connect(admin, autocommit=True) as conn:
        for statement in ADMIN_ONCE.format(owner=owner, db=db).strip().splitlines():
            conn.execute(statement)
        password = None
        if neurant_server.server_password:  # a server that wants passwords: the owner gets one
            password = secrets.token_hex(8)
            conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(owner), sql.Literal(password)))
    owner_url = as_user(admin, owner, db, password)
    try:
        before = run(owner_url, "preflight")  # vector not created yet: only a superuser may
        assert before.exit_code == PREFLIGHT_FAILED and "[extension.vector]" in before.output, before.output
        assert "create extension vector with schema extensions;" in before.output
        with psycopg.connect(with_database(admin, db), autocommit=True) as conn:
            conn.execute(ADMIN_IN_DATABASE.format(owner=owner))
        assert run(owner_url, "preflight").exit_code == 0
        migrated = run(owner_url, "--embedding-dimensions", "8", "migrate")
        assert migrated.exit_code == 0, migrated.output
        with psycopg.connect(owner_url) as conn:
            assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (False,)
            owners = conn.execute(
                "select count(*) filter (where p.proowner <> r.oid"
                " and p.oid <> 'private.delete_rows(text, jsonb)'::regprocedure) from pg_proc p "
                "join pg_namespace n on n.oid = p.pronamespace, pg_roles r "
                "where n.nspname in ('public', 'private') and r.rolname = current_user").fetchone()
        assert owners == (0,)
        doctor = run(owner_url, "doctor", "--json")
        assert doctor.exit_code == 0, doctor.output
        assert [f for f in json.loads(doctor.output) if f["level"] == "error"] == []
        # without CREATEDB the owner cannot build the reference schema: a warning says so...
        assert "schema.reference" in {f["check"] for f in json.loads(doctor.output)}
        # ...and a server where it may be built (here the admin's) makes the comparison: read-only on app
        doctor = run(owner_url, "doctor", "--json", "--reference-url", admin)
        assert doctor.exit_code == 0, doctor.output
        assert [f for f in json.loads(doctor.output) if f["check"].startswith("schema.")] == []
        demo = run(owner_url, "demo")  # the RLS helpers, as the owner acting as each member
        assert demo.exit_code == 0, demo.output
        assert "leo@acme.test        operador      sees company Acme Retail  1 conversation(s)" in demo.output
        with psycopg.connect(owner_url) as conn:
            ana = conn.execute("select id from auth.users where email = 'ana@acme.test'").fetchone()
            assert ana is not None
            conn.execute("select set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"sub": str(ana[0]), "role": "authenticated"}),))
            conn.execute("set local role authenticated")
            seen = conn.execute("select (select private.get_user_role())::text, "
                                "(select count(*) from public.companies), "
                                "(select count(*) from public.users)").fetchone()
        assert seen == ("owner", 1, 2)
        for job in (["archive", "--dry-run"], ["metrics"]):  # the jobs, as the owner (it bypasses RLS)
            ran = run(owner_url, "jobs", "run", *job, "--quiet")
            assert ran.exit_code == 0 and "succeeded" in ran.output, ran.output
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{db}" with (force)')
            conn.execute(f"drop role {owner}")


# --- commands that need a migrated database ---------------------------------------------

def test_doctor_on_a_partially_migrated_database_says_the_schema_is_incomplete(scratch_db: str) -> None:
    assert run(scratch_db, *test_cli_args(), "migrate", "--to", "10").exit_code == 0
    result = run(scratch_db, *test_cli_args(), "doctor", "--json")
    assert result.exit_code == 1
    first = json.loads(result.output)[0]
    assert (first["level"], first["check"]) == ("error", "schema.migrations")
    assert "1 of" in first["message"] and "run migrate first" in first["message"]


def test_doctor_reports_applied_migrations_the_runner_does_not_know(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    for name in ("0030_gadgets.sql", "0030_gadgets.rollback.sql"):
        (sql_tree / "schema" / name).unlink()
    result = run(scratch_db, "doctor", "--json")
    assert result.exit_code == 1 and result.output.startswith("["), result.output
    first = json.loads(result.output)[0]
    assert first["check"] == "schema.migrations" and "0030_gadgets" in first["message"]


@pytest.mark.parametrize("command", [
    ["doctor"],
    ["demo"],
    ["demo", "--no-data"],
    ["docs", "--check"],
    ["jobs", "run", "archive"],
    ["jobs", "run", "cold-export", "--out", "exports"],
    ["jobs", "status"],
    ["jobs", "schedule"],
    ["archive", "holds"],
    ["archive", "hold", "--company", "00000000-0000-0000-0000-000000000000", "--reason", "r", "--by", "b"],
    ["archive", "release", "00000000-0000-0000-0000-000000000000", "--company",
     "00000000-0000-0000-0000-000000000000", "--by", "b"],
], ids=lambda c: " ".join(c[:2]))
def test_a_command_on_an_unmigrated_database_says_run_migrate_first(
        scratch_db: str, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(scratch_db, *command)
    assert result.exit_code != 0
    assert "run migrate first" in result.output, result.output
    assert "Traceback" not in result.output and "database error" not in result.output


def test_preflight_warns_of_a_setting_a_request_role_gave_itself_with_its_undo(
        neurant_db: TestDatabase, scratch_db: str) -> None:
    """Issue 20, item 2: before a migration, preflight names what a session left on a request
    role (a warning: it blocks nothing) and the statement that undoes it."""
    database = urlsplit(scratch_db).path.lstrip("/")
    with psycopg.connect(scratch_db, autocommit=True) as conn:  # dropped with the database
        conn.execute(sql.SQL("alter role authenticated in database {} set default_transaction_read_only = on")
                     .format(sql.Identifier(database)))
    result = run(scratch_db, "preflight", "--json")
    found = [c for c in json.loads(result.output)["checks"] if c["check"] == "role.setting"]
    assert [(c["level"], c["fix"]) for c in found] == [
        ("warning", f"alter role authenticated in database \"{database}\" reset default_transaction_read_only;")]
    assert "default_transaction_read_only = on" in found[0]["message"]
