"""Doctor knows the schema its applied migrations define (issue 22, item 3): the live
catalog against a reference build of the applied migrations in a scratch database
(schema_diff.py; docs/doctor.md, "The schema the migrations define"). Objects that are
missing, differ or were created outside the migrations are errors; baseline refuses a
database that lacks the objects of the migrations it would mark applied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget
from neurant_db.migrate import migrate
from neurant_db.render import render_all
from neurant_db.testdb import TestDatabase, test_settings

from .conftest import scratch_database


def run(url: str, *args: str) -> Result:
    settings = test_settings()
    profile = ["--profile", settings.profile, "--embedding-dimensions", str(settings.embedding_dimensions)]
    return CliRunner().invoke(cli, ["--database-url", url, *profile, *args], catch_exceptions=False)


def schema_findings(url: str) -> set[tuple[str, str]]:
    findings: list[dict[str, Any]] = json.loads(run(url, "doctor", "--json").output)
    return {(f["check"], f["object"]) for f in findings if f["check"].startswith("schema.")}


def test_baseline_refuses_an_empty_database(scratch_db: str) -> None:
    newest = max(m.version for m in render_all(test_settings()))
    result = run(scratch_db, "baseline", str(newest), "--yes")
    assert result.exit_code == 2, result.output
    assert "refused" in result.output and "schema private" in result.output
    assert "Traceback" not in result.output
    with psycopg.connect(scratch_db) as conn:  # nothing marked applied
        assert conn.execute("select to_regclass('neurant_meta.schema_migrations')").fetchone() == (None,)


def test_doctor_reports_every_object_of_a_baselined_empty_database_missing(scratch_db: str) -> None:
    newest = max(m.version for m in render_all(test_settings()))
    assert run(scratch_db, "baseline", str(newest), "--yes", "--no-schema-check").exit_code == 0
    assert run(scratch_db, "status", "--exit-code").exit_code == 0  # the ledger alone looks complete
    result = run(scratch_db, "doctor", "--json")
    assert result.exit_code == 1
    missing = {f["object"] for f in json.loads(result.output) if f["check"] == "schema.missing"}
    assert {"table public.companies", "function private.get_user_company_id()"} <= missing


@pytest.fixture(scope="module")
def tampered_db(neurant_server: TestDatabase) -> Iterator[str]:
    """A migrated database, then changed by hand the ways the tests below expect doctor to see."""
    with scratch_database(neurant_server.url) as url:
        settings = test_settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("drop policy delete_as_admin on public.conversations")
            conn.execute("drop index public.messages_chatbot_time_idx")
            conn.execute("drop function public.clear_integration_credentials(uuid)")
            row = conn.execute("select pg_get_functiondef('public.accept_invitation(text)'::regprocedure)").fetchone()
            assert row is not None
            conn.execute(row[0].replace("begin", "begin\n  perform 1;", 1))
            conn.execute("create table public.made_by_hand (id int primary key)")
            conn.execute("grant select on public.companies to anon")
            # its name shares its first 63 characters (with the schema and table) with the
            # table's tenant guard: it is still an object of its own
            conn.execute("drop trigger conversations_archived_0_tenant_key on archive.conversations_archived")
        yield url


@pytest.fixture(scope="module")
def tampered_doctor(tampered_db: str) -> Result:
    """doctor's text output and exit code on tampered_db (one reference build for the module)."""
    return run(tampered_db, "doctor", "--json")


@pytest.mark.parametrize(("check", "obj"), [
    ("schema.missing", "policy public.conversations.delete_as_admin"),
    ("schema.missing", "index public.messages_chatbot_time_idx"),
    ("schema.missing", "function public.clear_integration_credentials(p_integration_id uuid)"),
    ("schema.differs", "function public.accept_invitation(p_token text)"),
    ("schema.extra", "table public.made_by_hand"),
    ("schema.differs", "grant public.companies"),
    ("schema.missing", "trigger archive.conversations_archived.conversations_archived_0_tenant_key"),
])
def test_doctor_reports_objects_not_as_the_applied_migrations_define_them(tampered_doctor: Result, check: str,
                                                                          obj: str) -> None:
    assert tampered_doctor.exit_code == 1
    assert (check, obj) in {(f["check"], f["object"]) for f in json.loads(tampered_doctor.output)}


def test_a_grant_to_a_role_owning_the_objects_on_either_side_is_not_a_difference() -> None:
    """On Supabase the reference is built by supabase_admin, whose default privileges grant
    postgres everything; postgres owns the live objects, so it holds that as their owner."""
    from neurant_db.schema_diff import compare, without_grants_to

    live = {("grant", "public.users"): "authenticated:SELECT"}
    reference = {("grant", "public.users"): "authenticated:SELECT, postgres:DELETE, postgres:SELECT"}
    owners = frozenset({"postgres", "supabase_admin"})
    assert compare(without_grants_to(live, owners), without_grants_to(reference, owners)) == []
    assert [f.object for f in compare(without_grants_to(live, owners),
                                      without_grants_to(reference, frozenset({"supabase_admin"})))] \
        == ["grant public.users"]


def test_doctor_names_the_difference(tampered_doctor: Result) -> None:
    [differs] = [f for f in json.loads(tampered_doctor.output)
                 if f["object"] == "function public.accept_invitation(p_token text)"]
    assert "perform 1" in differs["message"] and differs["hint"]


def test_a_freshly_migrated_database_matches_its_migrations(neurant_db: TestDatabase) -> None:
    assert schema_findings(neurant_db.url) == set()
