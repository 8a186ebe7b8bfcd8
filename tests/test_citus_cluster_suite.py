"""The pgTAP suite, the isolation matrix and tests/citus on a distributed database of a real
Citus cluster (tests/citus_cluster.py), profile citus, fixtures committed once before them
(tests/citus_suite.py says why). The files and matrix tables known to pass there are held
to passing; the counts are printed at the end of the run (issue 19, deliver item 1)."""

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
from neurant_db.tap import TapResult, run_tap_file, run_tap_sql
from neurant_db.testdb import SEARCH_PATH, commit_fixtures

from .citus_cluster import CitusCluster, distributed_database
from .citus_suite import COUNTS, PGTAP_ON_CLUSTER, matrix_table
from .test_citus_profile import VANILLA_SHAPE

ROOT = sql_root()
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


def _count(name: str, result: TapResult, held: set[str] | None = None) -> None:
    COUNTS.files.append(name)
    for a in result.assertions:
        if held is not None and a.description not in held:
            continue
        if a.directive == "SKIP":
            COUNTS.skipped += 1
        elif (name, a.description) in VANILLA_SHAPE:
            COUNTS.vanilla_shape += 1
        elif a.failed:
            COUNTS.failed += 1
        else:
            COUNTS.passed += 1


@pytest.mark.parametrize("name", PGTAP_ON_CLUSTER)
def test_the_pgtap_file_passes_unchanged_on_the_cluster(suite_db: str, name: str) -> None:
    result = run_tap_file(suite_db, ROOT / "tests" / "pgtap" / name, PREAMBLE)
    _count(name, result)
    assert (result.error, result.problems) == (None, [])
    failed = {(name, a.description) for a in result.assertions if a.failed}
    assert failed <= VANILLA_SHAPE, sorted(failed - VANILLA_SHAPE)
    assert len(result.assertions) == result.plan


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


def test_the_cluster_suite_names_only_files_that_exist() -> None:
    assert all((ROOT / "tests" / "pgtap" / name).is_file() for name in PGTAP_ON_CLUSTER)
    not_yet = sorted(p.name for p in (ROOT / "tests" / "pgtap").glob("*.sql") if p.name not in PGTAP_ON_CLUSTER)
    COUNTS.not_yet[:0] = not_yet + [f"tests/citus/{p.name}" for p in sorted((ROOT / "tests" / "citus").glob("*.sql"))]
    assert Path(ROOT / "tests" / "pgtap").is_dir()


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
