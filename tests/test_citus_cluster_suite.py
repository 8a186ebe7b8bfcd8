"""The pgTAP suite, the isolation matrix and tests/citus on a distributed database of a real
Citus cluster (tests/citus_cluster.py), profile citus, fixtures committed once before them
(tests/citus_suite.py says why). Every pgTAP file runs, each on a fresh copy of that database,
one statement per transaction; every assertion passes or is named, with its reason, in
tests/citus_suite.py. The matrix tables known to pass there are held to passing; the counts
are printed at the end of the run (issue 19, deliver item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db import pgtap
from neurant_db.cli import cli
from neurant_db.isolation import generate_matrix_sql
from neurant_db.paths import sql_root
from neurant_db.tap import TapResult, run_tap_sql
from neurant_db.testdb import SEARCH_PATH, commit_fixtures

from .citus_cluster import CitusCluster, FileCopies, distributed_database
from .citus_suite import CLUSTER_PREAMBLE, COUNTS, KNOWN_ERRORS, KNOWN_FAILING, PGTAP_PATHS, UNSTABLE, matrix_table
from .test_citus_profile import VANILLA_SHAPE

ROOT = sql_root()
# Shards per distributed table in the suite database (Citus's default is 32): both workers
# still hold shards of every table and every multi-shard statement spans both; fewer make
# the suite's per-file copies and its many small multi-shard statements faster.
SHARD_COUNT = 4
PREAMBLE = [("search path", SEARCH_PATH)]
# The isolation matrix's tables whose every cell passes on the cluster (growing).
MATRIX_ON_CLUSTER = (
    "public.subscription_plans", "public.user_invitations", "public.chatbot_templates",
    "public.hitl_escalations", "public.company_message_usage", "public.knowledge_queries",
    "private.integration_credentials", "public.integration_logs", "public.analytics_daily",
    "public.audit_logs", "public.system_metrics", "archive.conversations_archived",
    "archive.messages_archived", "archive.message_reactions_archived", "archive.hitl_escalations_archived",
    "archive.knowledge_queries_archived", "archive.integration_logs_archived", "archive.analytics_archived",
    "public.legal_holds", "private.memberships", "private.citus_layout", "private.job_runs",
    "private.cold_exports",
)


@pytest.fixture(scope="module")
def suite_db(citus_cluster: CitusCluster) -> Iterator[str]:
    """A distributed database migrated with profile citus, pgTAP and the fixtures committed."""
    with distributed_database(citus_cluster) as url:
        with psycopg.connect(url, autocommit=True) as conn:  # see SHARD_COUNT
            conn.execute(f"alter database {url.rsplit('/', 1)[1]} set citus.shard_count = {SHARD_COUNT}")
        result = CliRunner().invoke(cli, ["--database-url", url, "--profile", "citus",
                                          "--embedding-dimensions", "8", "migrate"])
        assert result.exit_code == 0, result.output
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
        if a.directive == "SKIP":
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
    assert sorted(failed - set(known)) == [], "failing on the cluster for no named reason"
    assert sorted(refused - set(known_errors)) == [], "refused on the cluster for no named reason"
    assert sorted(d for d in set(known) - failed if known[d] not in UNSTABLE) == [], \
        "named as failing on the cluster but holds now: remove it"
    assert sorted(m for m in set(known_errors) - refused if known_errors[m] not in UNSTABLE) == [], \
        "named as refused on the cluster but runs now: remove it"
    assert not_run >= 0 and (not_run == 0 or result.statement_errors), result.problems
    assert not [a.description for a in result.assertions if a.directive == "SKIP"], "skipped on the cluster"


def test_the_isolation_matrix_holds_on_the_cluster_for_the_tables_known_to_pass(suite_db: str) -> None:
    spec = ROOT / "tests" / "isolation" / "access_spec.toml"
    before = _fingerprints(suite_db)
    result = run_tap_sql(suite_db, "isolation matrix", generate_matrix_sql(suite_db, spec), PREAMBLE,
                         statement_transactions=True)
    # Each cell commits its own transaction: the probes must have undone every write.
    assert _fingerprints(suite_db) == before
    assert (result.error, result.problems) == (None, [])
    held = {a.description for a in result.assertions if matrix_table(a.description) in MATRIX_ON_CLUSTER}
    _count("isolation matrix", result, held)
    failing = {matrix_table(a.description) for a in result.assertions if a.failed}
    COUNTS.not_yet.extend(f"matrix {t}" for t in sorted(t for t in failing if t))
    assert sorted(a.description for a in result.assertions if a.failed and a.description in held) == []


def test_the_cluster_suite_names_only_files_and_assertions_that_exist() -> None:
    names = {p.name for p in PGTAP_PATHS}
    assert sorted({f for f, _ in [*KNOWN_FAILING, *KNOWN_ERRORS]} - names) == []
    assert len(PGTAP_PATHS) == len(names)  # one name per file: the known lists are keyed by it
    assert all(why.strip() for why in [*KNOWN_FAILING.values(), *KNOWN_ERRORS.values()])


@pytest.mark.xfail(strict=True, reason="Citus 13.2.2 recreates policies on shards without AS RESTRICTIVE "
                   "(commands/policy.c, CreatePolicyCommandForPolicy): open, docs/scale-out.md")
def test_the_restrictive_policies_stay_restrictive_on_every_shard(citus_cluster: CitusCluster, suite_db: str) -> None:
    with psycopg.connect(suite_db) as conn:
        restrictive = {r[0] for r in conn.execute("select polname::text from pg_policy where not polpermissive")}
    assert {"insert_while_writable", "update_while_writable", "delete_while_writable"} <= restrictive
    database = suite_db.rsplit("/", 1)[1]
    permissive_on_shards = set()
    for node in ("worker1", "worker2"):
        with psycopg.connect(citus_cluster.url(node, database=database)) as conn:
            permissive_on_shards |= {(r[0], r[1]) for r in conn.execute(
                "select polrelid::regclass::text, polname::text from pg_policy "
                "where polpermissive and polname::text = any(%s)", (sorted(restrictive),))}
    assert sorted(permissive_on_shards) == []
