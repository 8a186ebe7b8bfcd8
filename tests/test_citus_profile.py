"""Profile citus on plain PostgreSQL: it renders the shapes Citus accepts, migrates and
rolls back, passes the pgTAP suite and the isolation matrix (but for two assertions about
the vanilla policy shape, named below), and leaves the vanilla and supabase renderings
exactly as they were. Citus itself is not installable here: what needs a cluster is
listed in docs/scale-out.md ("What was verified how")."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db import pgtap
from neurant_db.citus import PlannedTable, format_plan
from neurant_db.citus_render import POLICY_HEADER, WRITABLE_CHECK, rewrite
from neurant_db.citus_testdb import copy_database_settings
from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget, database_name
from neurant_db.errors import MigrationSourceError
from neurant_db.paths import sql_root
from neurant_db.render import render_all, sql_statements
from neurant_db.settings import Settings
from neurant_db.table_registry import load
from neurant_db.tap import TapResult, run_tap_file
from neurant_db.testdb import TestDatabase, reapply_database_level, test_cli_args

from .conftest import scratch_database

ROOT = sql_root()
CITUS = Settings(profile="citus", embedding_dimensions=8).validate()
CITUS_ARGS = ["--profile", "citus", "--embedding-dimensions", "8"]
CITUS_ONLY = {"0150_citus_lookups", "0340_citus_membership_rpc", "0580_citus_lookup_policies",
              "2590_citus_insert_grants", "3990_citus_distribution", "3995_citus_shard_policies",
              "4500_citus_shard_policies_moved", "4800_citus_placement_readers"}
# The two catalog assertions of the suite that state the vanilla shape itself; their citus
# counterparts are in tests/citus/0100_citus_profile.sql.
VANILLA_SHAPE = {
    ("0010_catalog_hardening.sql", "the only unique keys of tenant tables without company_id are the auth "
     "identity (of a member and of its visible chatbots) and the invitation token hash (none writable by members)"),
    ("1020_chatbot_catalog.sql", "policies call the context helpers only wrapped in (select ...), once per statement"),
}
# The request roles: Citus connects to the workers as the current role (schema/0010).
REQUEST_ROLES = ("anon", "authenticated", "service_role")
# Roles profile citus creates LOGIN (Citus connects to the workers as the current role): the
# request roles and the owner of public.delete_rows (functions/0350).
LOGIN_ROLES = (*REQUEST_ROLES, "neurant_member_delete")
# The warnings doctor --profile citus keeps on this profile, each a documented cost: the policy
# helpers that still read a co-located distributed table from the shard, with the nested
# setting (docs/scale-out.md). No error: the membership copy is written by coordinator code.
# (signatures as regprocedure prints them: private is not on the doctor's search_path)
DISTRIBUTED_READS = {"private.read_chatbot_ids(boolean)", "private.get_user_plan_code()",
                     "private.require_company_writable(uuid)"}
HELPER_CALL = re.compile(r"(public|private)\.(get_[a-z_]+|require_company_writable)\(\)")


def _policies(sql: str) -> list[str]:
    return [s for s in sql_statements(sql)
            if re.sub(r"--[^\n]*", "", s).strip().lower().startswith(("create policy", "alter policy"))]


def test_vanilla_and_supabase_do_not_list_the_citus_migrations_nor_render_citus_shapes() -> None:
    for profile in ("vanilla", "supabase"):
        migrations = render_all(Settings(profile=profile).validate())
        assert CITUS_ONLY.isdisjoint(m.id for m in migrations)
        text = "\n".join(m.apply_sql for m in migrations)
        assert "citus." not in text and "private.memberships" not in text
        for policy in _policies(text):  # every helper call is still a once-per-statement InitPlan
            for call in HELPER_CALL.finditer(policy):
                assert f"(select {call.group(0)})" in policy, policy
        assert all(rewrite(m.apply_sql, profile) is m.apply_sql for m in migrations)


def test_citus_policies_call_the_helpers_bare_and_hold_no_subquery() -> None:
    migrations = render_all(CITUS)
    assert {m.id for m in migrations} >= CITUS_ONLY
    policies = [p for m in migrations for p in _policies(m.apply_sql)]
    assert len(policies) > 50
    assert [p for p in policies if re.search(r"\(\s*select\b", p, re.IGNORECASE)] == []
    text = "\n".join(m.apply_sql for m in migrations)
    assert not re.search(r"\btg_table_name\b", text, re.IGNORECASE)


def test_citus_has_no_restrictive_policy_and_every_write_policy_of_a_read_only_table_ands_the_check() -> None:
    """Citus 13.2 recreates policies on its shards without AS RESTRICTIVE (issue 19): the
    read-only check is folded into each permissive write policy (citus_render.py)."""
    policies = [p for m in render_all(CITUS) for p in _policies(m.apply_sql)]
    assert [p for p in policies if re.search(r"\bas\s+restrictive\b", p, re.IGNORECASE)] == []
    read_only = {e.name for e in load().entries if e.read_only}
    writes = []
    for policy in (re.sub(r"--[^\n]*", "", p).strip() for p in policies):
        header = POLICY_HEADER.match(policy)
        assert header, policy
        if header["table"] in read_only and (header["command"] or "all") != "select":
            writes.append(policy)
            clauses = re.findall(r"\b(?:using|with\s+check)\s*\(", policy, re.IGNORECASE)
            assert len(clauses) == policy.count(f") and {WRITABLE_CHECK})") >= 1, policy
    assert len(writes) >= 25  # the write policies of chatbots, documents, messages, users, ...


@pytest.mark.parametrize(("policy", "refusal"), [
    ("create policy narrow on public.chatbots as restrictive for update to authenticated using (true);",
     "policy narrow on public.chatbots is restrictive"),
    ("create policy everything on public.chatbots for all to authenticated using (true);",
     "policy everything on public.chatbots (read_only in schema/_tables.toml) is for all to authenticated"),
    ("create policy both on public.chatbots for insert to anon, authenticated with check (true);",
     "is for insert to anon,authenticated"),
])
def test_the_citus_render_refuses_a_policy_the_read_only_check_cannot_be_folded_into(policy: str, refusal: str) -> None:
    with pytest.raises(MigrationSourceError, match=re.escape(refusal)):
        rewrite(policy, "citus", {"public.chatbots"})
    assert rewrite(policy, "vanilla", {"public.chatbots"}) is policy


def test_the_citus_render_ands_the_check_into_each_clause_and_keeps_an_or_inside() -> None:
    policy = ("create policy update_mine on public.chatbots for update to authenticated\n"
              "  using (a or b) with check (c);\n"
              "comment on policy update_mine on public.chatbots is 'Mine.';")
    assert rewrite(policy, "citus", {"public.chatbots"}).startswith(
        "create policy update_mine on public.chatbots for update to authenticated\n"
        f"  using ((a or b) and {WRITABLE_CHECK}) with check ((c) and {WRITABLE_CHECK});\n"
        "comment on policy update_mine on public.chatbots is 'Mine. Profile citus: ANDed with")
    untouched = policy.replace("public.chatbots", "public.other")
    assert rewrite(untouched, "citus", {"public.chatbots"}) == untouched


def test_the_citus_migrations_are_listed_only_for_a_database_migrated_with_citus(neurant_db: TestDatabase) -> None:
    # the session's database, migrated with the suites' profile (vanilla, or supabase)
    status = CliRunner().invoke(cli, ["--database-url", neurant_db.url, *test_cli_args(), "status", "--json"])
    assert status.exit_code == 0, status.output
    assert "3990_citus_distribution" not in status.output


@pytest.fixture(scope="module")
def citus_template(neurant_server: TestDatabase) -> Iterator[str]:
    """A database of the test server migrated once with profile citus: copied, never written."""
    with scratch_database(neurant_server.url) as url:
        result = CliRunner().invoke(cli, ["--database-url", url, *CITUS_ARGS, "migrate"])
        assert result.exit_code == 0, result.output
        yield database_name(url)


@pytest.fixture
def citus_db(neurant_server: TestDatabase, citus_template: str) -> Iterator[str]:
    """A copy of citus_template (with the database-level grants and settings a copy loses),
    dropped after."""
    with scratch_database(neurant_server.url, template=citus_template) as url:
        reapply_database_level(DatabaseTarget(url), render_all(CITUS))
        with psycopg.connect(neurant_server.url, autocommit=True) as conn:  # citus.enable_unsafe_triggers
            copy_database_settings(conn, citus_template, database_name(url))
        yield url


def _run_suite(db: TestDatabase, url: str) -> dict[str, TapResult]:
    """The citus profile's own pgTAP files and the suite files holding the vanilla-shape
    assertions. The whole suite and the isolation matrix on this profile run on the real
    cluster (tests/test_citus_cluster_suite.py); here, on plain PostgreSQL, what stays is that
    exactly the vanilla-shape assertions fail and the citus counterparts hold."""
    preamble = db.preamble()
    shape_files = sorted({name for name, _description in VANILLA_SHAPE})
    results = {name: run_tap_file(url, ROOT / "tests" / "pgtap" / name, preamble) for name in shape_files}
    for path in sorted((ROOT / "tests" / "citus").glob("*.sql")):
        results[path.name] = run_tap_file(url, path, preamble)
    return results


def test_citus_profile_on_plain_postgres_fails_only_the_vanilla_shape_and_passes_doctor(
        neurant_db: TestDatabase, citus_db: str) -> None:
    args = ["--database-url", citus_db, *CITUS_ARGS]
    result = CliRunner().invoke(cli, [*args, "migrate"])
    assert result.exit_code == 0 and "nothing to apply" in result.output, result.output
    with psycopg.connect(citus_db, autocommit=True) as conn:
        pgtap.ensure_available(conn, embedded_sharedir=neurant_db.embedded_sharedir)
    results = _run_suite(neurant_db, citus_db)
    broken = {name: (r.error, r.problems) for name, r in results.items() if r.error or r.problems}
    assert broken == {}
    failed = {(name, a.description) for name, r in results.items() for a in r.assertions if a.failed}
    assert failed == VANILLA_SHAPE
    assert len(results["0100_citus_profile.sql"].assertions) == 18
    assert len(results["0150_membership_copy.sql"].assertions) == 38
    assert sum(len(r.assertions) for r in results.values()) > 300

    # The vanilla catalog rules hold on this profile too (comments, RLS, tenant guards, FK
    # indexes, ...; doctor --profile citus leaves out policy.initplan, the (select f())
    # Citus refuses); and so do the Citus rules: no error (no trigger of a distributed table
    # writes a reference table), the warnings of DISTRIBUTED_READS.
    # The roles are the server's, created NOLOGIN by the vanilla session migration: the
    # doctor sees them as profile citus creates them (LOGIN), then they are put back.
    findings = _doctor_with_login_roles(neurant_db, args)
    assert [(f["check"], f["object"]) for f in findings if f["level"] == "error"] == []
    assert {(f["check"], f["object"]) for f in findings if f["level"] == "warning"} == {
        ("citus.policy_reads_distributed", sig) for sig in DISTRIBUTED_READS}

    plan = CliRunner().invoke(cli, [*args, "citus", "plan", "--json"])
    assert plan.exit_code == 0, plan.output
    rows = json.loads(plan.output)["tables"]
    assert [r["position"] for r in rows] == list(range(1, len(rows) + 1))
    by_table = {r["table"]: r for r in rows}
    assert by_table["public.companies"] | {"distributed": None} == {
        "position": 8, "table": "public.companies", "placement": "distributed",
        "distribution_column": "id", "colocate_with": None, "distributed": None, "conflict": None}
    assert by_table["public.messages"]["colocate_with"] == "public.companies"
    assert by_table["private.memberships"]["placement"] == "reference"

    back = CliRunner().invoke(cli, [*args, "rollback", "--to", "0", "--yes"])
    assert back.exit_code == 0, back.output


def _doctor_with_login_roles(db: TestDatabase, args: list[str]) -> list[dict[str, str]]:
    with psycopg.connect(db.url, autocommit=True) as conn:
        nologin = [r for (r,) in conn.execute(
            "select rolname::text from pg_roles where rolname = any(%s) and not rolcanlogin",
            (list(LOGIN_ROLES),))]
        try:
            for role in nologin:
                conn.execute(f"alter role {role} login")
            doctor = CliRunner().invoke(cli, [*args, "doctor", "--json"])
        finally:
            for role in nologin:
                conn.execute(f"alter role {role} nologin")
    findings: list[dict[str, str]] = json.loads(doctor.output)
    return findings


def test_the_doctor_of_a_citus_database_names_each_nologin_request_role(
        neurant_db: TestDatabase, citus_db: str) -> None:
    if neurant_db.settings.profile != "vanilla":
        pytest.skip("the session server's roles were created by another profile")
    args = ["--database-url", citus_db, *CITUS_ARGS]
    doctor = CliRunner().invoke(cli, [*args, "doctor", "--json"])
    nologin = {f["object"] for f in json.loads(doctor.output) if f["check"] == "citus.nologin_role"}
    assert nologin == set(LOGIN_ROLES)  # created NOLOGIN by the vanilla session migration


def test_the_distribution_step_without_citus_is_a_notice(citus_db: str) -> None:
    args = ["--database-url", citus_db, *CITUS_ARGS]
    notices: list[str] = []
    with psycopg.connect(citus_db) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        placed = conn.execute("select private.citus_distribute()").fetchone()
    assert placed == (0,)
    planned = len(load().on("citus"))  # every entry, those with `since` placed by their own migration
    assert notices == ["citus not installed (no pg_dist_partition, create_reference_table, "
                       f"create_distributed_table): nothing distributed (private.citus_layout lists {planned} tables)"]
    text = CliRunner().invoke(cli, [*args, "citus", "plan"])
    assert text.exit_code == 0, text.output
    assert "not a Citus server" in text.output
    assert re.search(r"^\s*8\s+public\.companies\s+distributed\s+id\s", text.output, re.MULTILINE), text.output


def test_citus_plan_on_a_database_without_the_layout_says_how_to_get_one(neurant_db: TestDatabase) -> None:
    result = CliRunner().invoke(cli, ["--database-url", neurant_db.url, "citus", "plan"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "private.citus_layout" in result.output and "--profile citus" in result.output


def test_every_citus_only_file_says_so_in_its_opening_comment() -> None:
    for name in CITUS_ONLY:
        path = next(ROOT.glob(f"*/{name}.sql"))
        assert Path(path).read_text(encoding="utf-8").startswith("-- neurant: profile citus\n"), path


def test_preflight_for_citus_warns_about_nologin_request_roles(neurant_db: TestDatabase, scratch_db: str) -> None:
    if neurant_db.settings.profile != "vanilla":
        pytest.skip("the session server's roles were created by another profile")
    with psycopg.connect(neurant_db.url) as conn:
        nologin = [r for (r,) in conn.execute(
            "select rolname::text from pg_roles where rolname in ('anon', 'authenticated') and not rolcanlogin "
            "order by 1")]
    assert nologin == ["anon", "authenticated"]  # the session server was migrated with profile vanilla first
    result = CliRunner().invoke(cli, ["--database-url", scratch_db, "--profile", "citus", "preflight"])
    assert "[profile.citus]" in result.output and "alter role anon login; alter role authenticated login;" \
        in result.output, result.output


def test_the_plan_text_says_per_table_whether_citus_holds_it_as_planned() -> None:
    plan = [
        PlannedTable(1, "auth.users", "reference", None, None, True),
        PlannedTable(8, "public.companies", "distributed", "id", None, False),
        PlannedTable(9, "public.users", "distributed", "company_id", "public.companies", False, "reference"),
    ]
    lines = format_plan(plan, citus=True)
    assert lines[1].split() == ["1", "auth.users", "reference", "-", "-", "yes"]
    assert lines[2].split() == ["8", "public.companies", "distributed", "id", "-", "no"]
    assert lines[3].endswith("no (Citus holds it reference)")
    assert len(lines) == 4  # no "not a Citus server" line


def test_every_citus_only_rpc_is_documented_in_the_citus_section_of_the_service_guide() -> None:
    guide = (ROOT / "docs" / "services.md").read_text(encoding="utf-8")
    citus_section = guide[guide.index("## 11. Citus"):]
    rpcs = {name for m in render_all(CITUS) if m.id in CITUS_ONLY
            for name in re.findall(r"^create function (public\.[a-z_]+)\(", m.apply_sql, re.MULTILINE)}
    assert {"public.set_member_role", "public.set_member_active", "public.remove_member"} <= rpcs
    assert sorted(name for name in rpcs if f"{name}(" not in citus_section) == []
