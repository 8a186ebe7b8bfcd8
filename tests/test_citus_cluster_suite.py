"""The pgTAP suite, the isolation matrix and tests/citus on a distributed database of a real
Citus cluster (tests/citus_cluster.py), profile citus, fixtures committed once before them
(tests/citus_suite.py says why). Every pgTAP file runs, each on a fresh copy of that database,
one statement per transaction; every assertion passes or is named, with its reason, in
tests/citus_suite.py. The matrix tables known to pass there are held to passing; the counts
are printed at the end of the run (issue 19, deliver item 1)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from neurant_db import pgtap
from neurant_db.database import DatabaseTarget
from neurant_db.doctor_data import run_data_checks
from neurant_db.isolation import generate_matrix_sql
from neurant_db.jobs import call_job
from neurant_db.lifecycle_demo import load_demo
from neurant_db.paths import sql_root
from neurant_db.tap import TapResult, run_tap_sql
from neurant_db.tenant_transfer import export_tenant, import_tenant, table_hashes
from neurant_db.testdb import SEARCH_PATH, TestDatabase, commit_fixtures, test_settings

from .citus_cluster import CitusCluster, FileCopies, copy_of
from .citus_suite import CLUSTER_PREAMBLE, COUNTS, KNOWN_ERRORS, KNOWN_FAILING, PGTAP_PATHS, UNSTABLE, matrix_table
from .conftest import migrated_template, scratch_database
from .test_citus_profile import VANILLA_SHAPE

ROOT = sql_root()
PREAMBLE = [("search path", SEARCH_PATH)]
GENERATED_COMPANY = "00000000-0000-4000-9000-000000000001"  # lifecycle_demo's first company
COMPANY_A = "aaaaaaaa-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def suite_db(citus_cluster: CitusCluster, citus_migrated: str) -> Iterator[str]:
    """A copy of the session's migrated distributed database, pgTAP and the fixtures committed."""
    with copy_of(citus_cluster, citus_migrated) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            pgtap.ensure_available(conn, embedded_sharedir=None)
        commit_fixtures(url)
        yield url


def _fingerprints(url: str) -> tuple[str, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute("select tests.company_fingerprint(tests.company_id('A')), "
                           "tests.company_fingerprint(tests.company_id('B'))").fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def _count(name: str, result: TapResult, held: set[str] | None = None, known: set[str] | None = None,
           not_run: int = 0) -> None:
    COUNTS.files.append(name)
    COUNTS.not_run += not_run
    for a in result.assertions:
        if held is not None and a.description not in held:
            continue
        if a.directive == "SKIP" and "target selects no row" in a.reason:
            COUNTS.not_applicable += 1  # a matrix cell whose row set is empty for that identity, by the spec
        elif a.directive == "SKIP":
            COUNTS.skipped += 1
        elif (name, a.description) in VANILLA_SHAPE:
            COUNTS.vanilla_shape += 1
        elif a.failed and known is not None and a.description in known:
            COUNTS.known += 1
        elif a.failed:
            COUNTS.failed += 1
        else:
            COUNTS.passed += 1


@pytest.fixture(scope="module")
def file_copies(citus_cluster: CitusCluster, suite_db: str) -> Iterator[FileCopies]:
    """A fresh copy of the suite database for each pgTAP file (they commit), the next one
    made while a file runs; made from a copy of its own so the other tests may use suite_db."""
    with FileCopies(citus_cluster, suite_db, [path.name for path in PGTAP_PATHS]) as copies:
        yield copies


@pytest.mark.parametrize("path", PGTAP_PATHS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_pgtap_file_holds_on_the_cluster(file_copies: FileCopies, path: Path) -> None:
    with file_copies.take(path.name) as url:
        result = run_tap_sql(url, path.name, path.read_text(encoding="utf-8"), PREAMBLE + CLUSTER_PREAMBLE,
                             statement_transactions=True, continue_after_errors=True)
    name = path.name
    # A refused statement's assertions do not run: the plan then differs, and says by how many.
    problems = [p for p in result.problems if not (result.statement_errors and p.startswith("planned "))]
    assert (result.error, problems) == (None, [])
    known = {d: why for (f, d), why in KNOWN_FAILING.items() if f == name}
    known_errors = {m: why for (f, m), why in KNOWN_ERRORS.items() if f == name}
    failed = {a.description for a in result.assertions if a.failed and (name, a.description) not in VANILLA_SHAPE}
    refused = {next((m for m in known_errors if m in e), e) for e in result.statement_errors}
    not_run = (result.plan or 0) - len(result.assertions)
    _count(name, result, known=failed & set(known), not_run=not_run)
    for d in sorted(failed & set(known)):
        COUNTS.name(known[d], f"{name} {d!r}")
    for m in sorted(refused & set(known_errors)):
        COUNTS.name(known_errors[m], f"{name} refused {m!r}")
    # Every failure and every refused statement is named in tests/citus_suite.py with its reason,
    # and every one named there still happens (remove it when it holds).
    unnamed = [f"{a.description}: {a.diagnostics}" for a in result.assertions if a.description in failed - set(known)]
    assert unnamed == [], "failing on the cluster for no named reason"
    assert sorted(refused - set(known_errors)) == [], "refused on the cluster for no named reason"
    assert sorted(d for d in set(known) - failed if known[d] not in UNSTABLE) == [], \
        "named as failing on the cluster but holds now: remove it"
    assert sorted(m for m in set(known_errors) - refused if known_errors[m] not in UNSTABLE) == [], \
        "named as refused on the cluster but runs now: remove it"
    assert not_run >= 0 and (not_run == 0 or result.statement_errors), result.problems
    assert not [a.description for a in result.assertions if a.directive == "SKIP"], "skipped on the cluster"


@pytest.fixture(scope="module")
def matrix(suite_db: str) -> TapResult:
    """The isolation matrix run once on the cluster, one cell per transaction."""
    spec = ROOT / "tests" / "isolation" / "access_spec.toml"
    before = _fingerprints(suite_db)
    result = run_tap_sql(suite_db, "isolation matrix", generate_matrix_sql(suite_db, spec), PREAMBLE,
                         statement_transactions=True)
    # Each cell commits its own transaction: the probes must have undone every write.
    assert _fingerprints(suite_db) == before
    return result


def test_the_whole_isolation_matrix_holds_on_the_cluster(matrix: TapResult) -> None:
    """Every cell of every table (and the catalog and sequence checks) of the spec, unchanged,
    on the distributed database: the same access as on plain PostgreSQL."""
    result = matrix
    assert (result.error, result.problems) == (None, [])
    _count("isolation matrix", result)
    failing = {matrix_table(a.description) for a in result.assertions if a.failed}
    COUNTS.not_yet.extend(f"matrix {t}" for t in sorted(t for t in failing if t))
    assert [a.description for a in result.assertions if a.failed] == []
    assert len(result.assertions) == result.plan


# A write the spec denies a member in its own company: "supervisor cannot update own company's rows of ...".
OWN_WRITE_DENIED = re.compile(r"^(owner|administrador|supervisor|operador) cannot (insert|update|delete) "
                              r"own company's .*\(RLS or grant\)$")


def test_no_member_writes_beyond_its_role_in_its_own_company_on_the_cluster(matrix: TapResult) -> None:
    """Issue 19: with the read-only policies restrictive, Citus made them permissive on every
    shard and 39 of these cells let a supervisor or operador insert, update or delete what only
    an administrador may (chatbots, chatbot_operators, documents, document_chunks, integrations,
    messages, message_reactions, conversations, companies). Profile citus now folds the check
    into the write policies (runner/neurant_db/citus_render.py): every such cell is denied by
    RLS or a grant on the cluster."""
    cells = [a for a in matrix.assertions if OWN_WRITE_DENIED.match(a.description) and a.directive != "SKIP"]
    assert [a.description for a in cells if a.failed] == []
    tables = {matrix_table(a.description) for a in cells}
    assert {"public.chatbots", "public.chatbot_operators", "public.documents", "public.document_chunks",
            "public.integrations", "public.messages", "public.message_reactions", "public.conversations",
            "public.companies", "public.users"} <= tables
    assert len(cells) >= 100


def test_the_cluster_suite_names_only_files_and_assertions_that_exist() -> None:
    names = {p.name for p in PGTAP_PATHS}
    assert sorted({f for f, _ in [*KNOWN_FAILING, *KNOWN_ERRORS]} - names) == []
    assert len(PGTAP_PATHS) == len(names)  # one name per file: the known lists are keyed by it
    assert all(why.strip() for why in [*KNOWN_FAILING.values(), *KNOWN_ERRORS.values()])


# One policy as the catalog of a node holds it: what decides who reaches which row.
POLICY_SHAPES = """
select c.oid::regclass::text, p.polname::text, p.polcmd::text, p.polpermissive,
       array(select coalesce(r.rolname::text, 'public') from unnest(p.polroles) x
             left join pg_roles r on r.oid = x order by 1),
       coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
from pg_policy p join pg_class c on c.oid = p.polrelid
order by 1, 2
"""
PolicyShape = tuple[str, str, bool, list[str], str, str]
# A helper call as seeds/3995 writes it on the shards, deparsed: `( SELECT private.f() AS f)`,
# with its cast where one shows (`::uuid[]` inside `= ANY (...)`); and a call left bare.
WRAPPED_CALL = re.compile(r"\( SELECT ((?:public|private|auth)\.[a-z_]+\(\)) AS [a-z_]+\)(?:::[a-z_.]+(?:\[\])?)?")
BARE_CALL = re.compile(r"(?<!SELECT )(?:public|private|auth)\.[a-z_]+\(\)")


def _unwrapped(policies: list[PolicyShape]) -> list[PolicyShape]:
    """A placement's policies with each wrapped helper call bare again: its table's text."""
    return [(name, cmd, permissive, roles, WRAPPED_CALL.sub(r"\1", using), WRAPPED_CALL.sub(r"\1", check))
            for name, cmd, permissive, roles, using, check in policies]


def _policies_by_relation(url: str) -> dict[str, list[PolicyShape]]:
    by_relation: dict[str, list[PolicyShape]] = {}
    with psycopg.connect(url) as conn:
        conn.execute("set search_path = pg_catalog")  # every name deparsed qualified, on every node alike
        conn.execute("set citus.override_table_visibility = off")  # shards are hidden from pg_class otherwise
        for relation, *shape in conn.execute(POLICY_SHAPES):
            by_relation.setdefault(relation, []).append((shape[0], shape[1], shape[2], shape[3], shape[4], shape[5]))
    return by_relation


def test_every_shard_placement_and_worker_shell_holds_exactly_its_tables_policies(
        citus_cluster: CitusCluster, suite_db: str) -> None:
    """Citus copies a table's policies to each of its shard placements and to the table's
    shell on every worker, and RLS is decided there (on the shards in the (select f())
    form seeds/3995 writes). Citus 13.2.2 writes those copies without
    AS RESTRICTIVE (commands/policy.c, CreatePolicyCommandForPolicy), so any restrictive
    policy, or any other drift, shows here as a placement whose policies differ from its
    table's on the coordinator: name, command, roles, permissive flag, USING and WITH CHECK.
    Profile citus ships no restrictive policy (runner/neurant_db/citus_render.py)."""
    database = suite_db.rsplit("/", 1)[1]
    with psycopg.connect(suite_db) as conn:
        conn.execute("set search_path = pg_catalog")
        placements = conn.execute("""
            select p.logicalrelid::regclass::text, n.nspname || '.' || c.relname || '_' || s.shardid, sp.nodeport
            from pg_dist_partition p join pg_class c on c.oid = p.logicalrelid
            join pg_namespace n on n.oid = c.relnamespace
            join pg_dist_shard s on s.logicalrelid = p.logicalrelid
            join pg_dist_shard_placement sp on sp.shardid = s.shardid
            order by 1, 2, 3""").fetchall()
    shards = {shard for _t, shard, _p in placements}  # the coordinator holds placements too
    shells = {r: p for r, p in _policies_by_relation(suite_db).items() if r not in shards}
    node_of_port = {port: node for node, port in citus_cluster.ports.items()}
    on_node = {node: _policies_by_relation(citus_cluster.url(node, database=database))
               for node in sorted({node_of_port[port] for _t, _s, port in placements} | {"worker1", "worker2"})}
    # The shards' policies are the table's with every helper call wrapped in (select ...)
    # (seeds/3995, docs/scale-out.md "Reads under RLS"); the worker shells' are the table's.
    differing = [f"{shard} on {node_of_port[port]}" for table, shard, port in placements
                 if _unwrapped(on_node[node_of_port[port]].get(shard, [])) != shells.get(table, [])]
    bare = [f"{policy[0]} on {shard}" for _table, shard, port in placements
            for policy in on_node[node_of_port[port]].get(shard, []) if BARE_CALL.search(policy[4] + " " + policy[5])]
    assert bare == []
    tables = sorted({table for table, _s, _p in placements})
    differing += [f"{table} (shell) on {node}" for node in ("worker1", "worker2") for table in tables
                  if on_node[node].get(table, []) != shells.get(table, [])]
    assert differing == []
    # What was compared: every placed table, its policies (more than one placement each).
    assert set(shells) <= set(tables) and len(tables) >= 30
    assert len(placements) > 2 * len(tables)
    assert [name for policies in shells.values() for name, _c, permissive, *_ in policies if not permissive] == []


@pytest.fixture(scope="module")
def vanilla_template(neurant_server: TestDatabase) -> Iterator[str]:
    """A migrated vanilla database of the session's test server (copied, never written)."""
    if test_settings().profile != "vanilla":
        pytest.skip("the tenant round trip pairs the cluster with the vanilla test server")
    with migrated_template(neurant_server.url, "tenant_citus_tpl") as name:
        yield name


@pytest.fixture(scope="module")
def vanilla_tenant_export(neurant_server: TestDatabase, vanilla_template: str,
                          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`tenant export` of a generated company (not one of the fixtures' A and B, which the
    suite database holds) from a vanilla database of the session's test server."""
    out = tmp_path_factory.mktemp("tenant-citus") / "export"
    with scratch_database(neurant_server.url, template=vanilla_template) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            load_demo(conn, companies=1, conversations=12, messages=3)
            call_job(conn, "archive")
        export_tenant(DatabaseTarget(url), GENERATED_COMPANY, out)
        yield out


# rule: tenant-transfer (docs/rules.md)
def test_a_vanilla_tenant_export_imports_onto_the_cluster_with_identical_hashes(
        citus_cluster: CitusCluster, suite_db: str, vanilla_tenant_export: Path, neurant_server: TestDatabase,
        vanilla_template: str) -> None:
    """On a copy of the suite database (fixtures committed): the import derives the citus-only
    membership lookup from the users rows, leaves out the vanilla-only chatbot visibility,
    and every loaded table's count and sha256 equal the export's; doctor --data is clean."""
    from neurant_db.citus_testdb import cluster_nodes, copy_distributed_database, drop_distributed_database

    nodes = cluster_nodes(citus_cluster.url())
    assert nodes is not None
    name = f"{suite_db.rsplit('/', 1)[1]}_tenant"
    copy_distributed_database(citus_cluster.url(), suite_db.rsplit("/", 1)[1], name, nodes)
    try:
        url = citus_cluster.url(database=name)
        report = import_tenant(DatabaseTarget(url), vanilla_tenant_export)
        assert report["verified"] and report["skipped"] == ["private.chatbot_visibility"]
        assert report["derived"] == ["private.memberships"]
        manifest = json.loads((vanilla_tenant_export / "manifest.json").read_text())
        loaded = {**manifest, "tables": {t: e for t, e in manifest["tables"].items() if t in report["tables"]}}
        assert table_hashes(DatabaseTarget(url), GENERATED_COMPANY, loaded) == {
            t: (e["rows"], e["sha256"]) for t, e in loaded["tables"].items()}
        assert loaded["tables"]["archive.messages_archived"]["rows"] > 0
        with psycopg.connect(url, autocommit=True) as conn:
            assert [f for f in run_data_checks(conn) if f.level == "error"] == []
        # and back: the fixtures' company A exported from the cluster imports onto vanilla
        # (memberships left out, the chatbot visibility computed there)
        back = vanilla_tenant_export.parent / "from-citus"
        exported = export_tenant(DatabaseTarget(url), COMPANY_A, back)
        with scratch_database(neurant_server.url, template=vanilla_template) as vanilla:
            report = import_tenant(DatabaseTarget(vanilla), back)
            assert report["verified"] and report["skipped"] == ["private.memberships"]
            assert report["derived"] == ["private.chatbot_visibility"]
            here = {**exported, "tables": {t: e for t, e in exported["tables"].items() if t in report["tables"]}}
            assert table_hashes(DatabaseTarget(vanilla), COMPANY_A, here) == {
                t: (e["rows"], e["sha256"]) for t, e in here["tables"].items()}
            with psycopg.connect(vanilla) as conn:
                visible = conn.execute("select count(*) from private.chatbot_visibility where company_id = %s",
                                       (COMPANY_A,)).fetchone()
            assert visible is not None and visible[0] > 0
    finally:
        drop_distributed_database(citus_cluster.url(), name, nodes)
