"""Profile supabase, first class: on a PostgreSQL 15 prepared exactly the way a new Supabase
project starts (tests/supabase_pg.py: supabase/postgres's init scripts and migrations, the
auth service's own migrations; `postgres` demoted), the project is applied as `postgres`
(preflight, migrate), doctor is clean, and the whole pgTAP suite and the isolation matrix
(sequences included) pass on a copy of that database, in a pytest run of their own.

Skipped, with one line saying what is missing, without ../shared/vendor or Debian's
PostgreSQL 15; under CI=true that skip is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.paths import sql_root
from neurant_db.testdb import TestDatabase
from tests.debian_pg import DebianServer
from tests.supabase_pg import SUPERUSER, missing_reason, supabase_cluster

ROOT = Path(__file__).resolve().parents[1]
MIGRATED = "neurant_supabase"  # migrated as postgres; the suites run on copies of it
DIMENSIONS = "8"


@dataclass(frozen=True)
class Supabase:
    server: DebianServer

    def url(self, database: str = MIGRATED, user: str = "postgres") -> str:
        return self.server.url(database, user)

    def args(self, database: str = MIGRATED, user: str = "postgres") -> list[str]:
        return ["--database-url", self.url(database, user), "--profile", "supabase",
                "--embedding-dimensions", DIMENSIONS]

    def copy(self, name: str) -> str:
        """A new database copied from the migrated one (as Supabase's superuser); its URL as postgres."""
        with psycopg.connect(self.url("postgres", SUPERUSER), autocommit=True) as admin:
            admin.execute(f'create database "{name}" template "{MIGRATED}" owner postgres')
        return self.url(name)

    def drop(self, name: str) -> None:
        with psycopg.connect(self.url("postgres", SUPERUSER), autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def supabase() -> Iterator[Supabase]:
    reason = missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the profile supabase suite must run under CI=true, but cannot: {reason}", pytrace=False)
        pytest.skip(f"profile supabase suite not run: {reason}")
    with supabase_cluster() as server:
        sb = Supabase(server)
        with psycopg.connect(sb.url("postgres", SUPERUSER), autocommit=True) as admin:
            admin.execute(f'create database "{MIGRATED}" owner postgres')  # from template1: Supabase's
        for command in (["preflight"], ["migrate"]):
            result = CliRunner().invoke(cli, [*sb.args(), *command])
            assert result.exit_code == 0, f"{command[0]} as postgres on a new Supabase project:\n{result.output}"
        yield sb


def test_profile_supabase_doctor_is_clean_on_a_new_supabase_project(supabase: Supabase) -> None:
    result = CliRunner().invoke(cli, [*supabase.args(), "doctor", "--json"])
    errors = [f for f in json.loads(result.output) if f["level"] == "error"]
    assert errors == [], errors


def test_profile_supabase_passes_the_whole_pgtap_suite_and_the_isolation_matrix(
        supabase: Supabase, capsys: pytest.CaptureFixture[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    # The tests run as Supabase's superuser (pgTAP files act as every role with SET ROLE), on
    # copies of the database postgres migrated: ownership and grants are Supabase's.
    env.update(DATABASE_URL=supabase.url("postgres", SUPERUSER), NEURANT_TEST_PROFILE="supabase",
               NEURANT_TEST_TEMPLATE=MIGRATED, NEURANT_TEST_EMBEDDING_DIMENSIONS=DIMENSIONS)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", "-rfE",
         "tests/pgtap", "tests/isolation"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else done.stderr.strip()[-500:]
    counts = re.sub(r" in [0-9.]+s.*", "", summary.strip("= "))
    with capsys.disabled():
        print(f"\nprofile supabase suite (pgTAP + isolation matrix, PostgreSQL 15 prepared like a new "
              f"Supabase project): {counts} in {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, "\n".join(lines[-60:]) + done.stderr[-2000:]
    assert re.search(r"\b\d{4,} passed\b", summary), summary  # the whole suite ran, not a part of it


def test_profile_supabase_doctor_flags_a_table_created_outside_the_migrations(supabase: Supabase) -> None:
    """Supabase's default privileges open a table postgres creates to anon (arwdDxt) and its
    identity sequence (rwU): doctor says so, for both."""
    name = "neurant_sb_rogue"
    url = supabase.copy(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create table public.rogue (id bigint generated always as identity primary key)")
        result = CliRunner().invoke(cli, [*supabase.args(name), "doctor", "--json"])
        found = {(f["check"], f["object"]) for f in json.loads(result.output) if f["level"] == "error"}
    finally:
        supabase.drop(name)
    assert {("grant.table", "public.rogue anon"), ("grant.table", "public.rogue authenticated"),
            ("grant.sequence", "public.rogue_id_seq anon"),
            ("grant.sequence", "public.rogue_id_seq authenticated")} <= found, found


def _fixtures(conn: psycopg.Connection) -> None:
    """The test fixtures (companies A and B, one member per role), as the pgTAP files get them."""
    conn.execute("create schema if not exists tap; create extension if not exists pgtap schema tap; "
                 "set local search_path = public, tap, extensions")
    for path in sorted((sql_root() / "tests" / "fixtures").glob("*.sql")):
        conn.execute(path.read_text(encoding="utf-8").encode())


def _delete_login(conn: psycopg.Connection, role: str, label: str) -> str:
    """Delete the login of company A's member `label` as `role`: 'ok' or 'SQLSTATE: message'."""
    try:
        with conn.transaction():
            conn.execute(f"set local role {role}")
            conn.execute("delete from auth.users where id = tests.auth_id('A', %s)", (label,))
            conn.execute("reset role")
    except psycopg.Error as exc:
        return f"{exc.sqlstate}: {exc.diag.message_primary}"
    return "ok"


def _membership_after_login_deletion(conn: psycopg.Connection, role: str) -> tuple[str, str, int, int]:
    _fixtures(conn)
    member = conn.execute("select tests.user_id('A', 'operador'), tests.auth_id('A', 'operador')").fetchone()
    assert member is not None
    operador = _delete_login(conn, role, "operador")
    left = conn.execute("select count(*) from public.users where auth_user_id = %s", (member[1],)).fetchone()
    audited = conn.execute("select count(*) from public.audit_logs where table_name = 'users' "
                           "and action = 'delete' and row_id = %s", (member[0],)).fetchone()
    owner = _delete_login(conn, role, "owner")
    assert left is not None and audited is not None
    return operador, owner, int(left[0]), int(audited[0])


# rule: login-deletion-removes-membership (docs/rules.md)
def test_deleting_a_members_login_as_supabase_auth_admin_removes_the_membership_but_not_the_owners(
        supabase: Supabase) -> None:
    """Supabase's dashboard deletes a user as supabase_auth_admin: the member goes with the
    login (audited, like a removal); the owner's login is refused while the company exists."""
    name = "neurant_sb_login"
    supabase.copy(name)
    try:
        with psycopg.connect(supabase.url(name, SUPERUSER)) as conn:
            outcome = _membership_after_login_deletion(conn, "supabase_auth_admin")
            conn.rollback()
    finally:
        supabase.drop(name)
    assert outcome == ("ok", "42501: company aaaaaaaa-0000-0000-0000-000000000000 would be left without an owner", 0, 1)


def test_deleting_a_members_login_as_service_role_removes_the_membership_on_vanilla(neurant_db: TestDatabase) -> None:
    with psycopg.connect(neurant_db.url) as conn:
        outcome = _membership_after_login_deletion(conn, "service_role")
        conn.rollback()
    assert outcome[0] == "ok" and outcome[2:] == (0, 1), outcome
    assert outcome[1].startswith("42501: company ") and outcome[1].endswith(" would be left without an owner")


def test_preflight_on_an_auth_schema_the_auth_service_has_not_migrated_says_to_start_it(supabase: Supabase) -> None:
    """A Supabase database before its auth service's first start: supabase/postgres's auth
    schema without what the auth service's migrations add (auth.jwt(), email_confirmed_at)."""
    name = "neurant_sb_early"
    with psycopg.connect(supabase.url("postgres", SUPERUSER), autocommit=True) as admin:
        admin.execute(f'create database "{name}" template template1 owner postgres')
    try:
        with psycopg.connect(supabase.url(name, SUPERUSER), autocommit=True) as conn:
            conn.execute("drop function auth.jwt(); alter table auth.users drop column email_confirmed_at cascade")
        result = CliRunner().invoke(cli, [*supabase.args(name), "preflight"])
    finally:
        supabase.drop(name)
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert "function auth.jwt()" in result.output and "column auth.users.email_confirmed_at" in result.output
    assert "start the project's auth service" in result.output, result.output
    assert "use profile vanilla" not in result.output, result.output


@pytest.mark.parametrize("ci", ["true", ""])
def test_the_supabase_suite_is_skipped_in_one_line_without_its_vendor_and_fails_under_ci(
        ci: str, tmp_path: Path) -> None:
    env = {**os.environ, "NEURANT_VENDOR": str(tmp_path / "no-vendor"), "CI": ci}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/test_supabase_suite.py",
         "-k", "doctor_is_clean"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    missing = f"{tmp_path / 'no-vendor' / 'init-supabase-db.sh'} is missing"
    if ci:
        assert done.returncode != 0 and "must run under CI=true" in done.stdout and missing in done.stdout, done.stdout
    else:
        assert done.returncode == 0 and "1 skipped" in done.stdout, done.stdout
        assert f"profile supabase suite not run: {missing}" in done.stdout, done.stdout


def test_a_tenant_round_trips_between_two_supabase_projects_with_identical_hashes(
        supabase: Supabase, tmp_path: Path) -> None:
    """`tenant export` and `tenant import` as `postgres` (demoted, as on a Supabase project):
    company A of the fixtures (loaded by Supabase's superuser) moves into a second copy with
    every table's count and sha256 identical, and doctor --data finds nothing there."""
    from neurant_db.database import DatabaseTarget
    from neurant_db.doctor_data import run_data_checks
    from neurant_db.tenant_transfer import export_tenant, import_tenant, table_hashes
    from neurant_db.testdb import commit_fixtures

    company = "aaaaaaaa-0000-0000-0000-000000000000"
    source, target = "neurant_sb_tenant_src", "neurant_sb_tenant_dst"
    try:
        supabase.copy(source)
        commit_fixtures(supabase.url(source, SUPERUSER))
        url = supabase.copy(target)
        manifest = export_tenant(DatabaseTarget(supabase.url(source)), company, tmp_path / "export")
        report = import_tenant(DatabaseTarget(url), tmp_path / "export")
        assert report["verified"] and report["skipped"] == [] and report["derived"] == []
        assert table_hashes(DatabaseTarget(url), company, manifest) == {
            t: (e["rows"], e["sha256"]) for t, e in manifest["tables"].items()}
        with psycopg.connect(url, autocommit=True) as conn:
            assert [f for f in run_data_checks(conn) if f.level == "error"] == []
    finally:
        supabase.drop(source)
        supabase.drop(target)
