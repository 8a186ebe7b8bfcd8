"""`neurant-db --profile citus bench` on a real Citus cluster (tests/citus_cluster.py): it
measures in a throwaway database distributed over every node, prints the side-by-side
ratios (reads under RLS vs the explicit filter, writes full vs bare), routes every keyed
hot query to one shard, and leaves nothing behind (issue 19, deliverable 5). Plans are
asserted, never timings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from neurant_db.bench import QUERIES

from .citus_cluster import TEST_SHARDS, CitusCluster

TOY = ["--companies", "8", "--conversations", "10", "--messages", "2", "--iterations", "10", "--rounds", "1",
       "--writes", "--write-seconds", "1", "--write-repeats", "1"]


@dataclass(frozen=True)
class BenchRun:
    report: dict[str, Any]
    plans: dict[tuple[str, str], str]  # (query, variant) -> EXPLAIN ANALYZE text
    before: dict[str, tuple[set[str], set[str]]]  # node -> (databases, roles)
    after: dict[str, tuple[set[str], set[str]]]


def _state(cluster: CitusCluster) -> dict[str, tuple[set[str], set[str]]]:
    out = {}
    for node in cluster.ports:
        with psycopg.connect(cluster.url(node)) as conn:
            out[node] = ({r[0] for r in conn.execute("select datname from pg_database")},
                         {r[0] for r in conn.execute("select rolname from pg_roles")})
    return out


@pytest.fixture(scope="module")
def bench_run(citus_cluster: CitusCluster, tmp_path_factory: pytest.TempPathFactory) -> BenchRun:
    """One toy-scale `neurant-db --profile citus --database-url <coordinator> bench --writes
    --json`, in a process of its own (its throwaway database is dropped when it exits)."""
    reports = tmp_path_factory.mktemp("bench-reports")
    before = _state(citus_cluster)
    exe = shutil.which("neurant-db") or str(Path(sys.executable).parent / "neurant-db")
    done = subprocess.run(
        [exe, "--profile", "citus", "--embedding-dimensions", "8", "--database-url", citus_cluster.url(),
         "bench", *TOY, "--report-dir", str(reports), "--json"],
        capture_output=True, text=True, check=False, timeout=900,
        env={**{k: v for k, v in os.environ.items() if k != "NEURANT_TEST_PROFILE"}, **TEST_SHARDS})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    (explain,) = reports.glob("bench-*/explain.txt")
    plans = {(m.group(1), m.group(2)): m.group(3) for m in re.finditer(
        r"^== ([^\n]+) \[(baseline|rls\+key|rls)\]\n(.*?)(?=^== |\Z)", explain.read_text(), re.M | re.S)}
    return BenchRun(report, plans, before, _state(citus_cluster))


def test_the_bench_on_the_cluster_routes_every_keyed_hot_query_to_one_shard(bench_run: BenchRun) -> None:
    # baseline and rls+key send company_id = $1: Citus's router sends each to one shard.
    # The RLS-only variant is not routed (RLS predicates do not route; docs/scale-out.md,
    # "What services must send"): one task per shard.
    assert len(bench_run.plans) == 3 * len(QUERIES)
    for q in QUERIES:
        for variant in ("baseline", "rls+key"):
            plan = bench_run.plans[(q.name, variant)]
            assert re.findall(r"Task Count: (\d+)", plan) == ["1"], (q.name, variant, plan)
        unrouted = bench_run.plans[(q.name, "rls")]
        assert re.findall(r"Task Count: (\d+)", unrouted) == [str(bench_run.report["cluster"]["shards"])], unrouted


def test_the_bench_on_the_cluster_reports_reads_and_writes_side_by_side(bench_run: BenchRun) -> None:
    report = bench_run.report
    assert report["profile"] == "citus" and len(report["cluster"]["workers"]) == 2
    assert report["cluster"]["citus"].startswith("Citus 13.")
    assert [r["query"] for r in report["reads"]] == [q.name for q in QUERIES]
    assert all(r["same_rows"] for r in report["reads"]), report["reads"]
    assert all(r["ratio_rls_keyed"] > 0 and r["ratio_rls"] > 0 for r in report["reads"])
    writes = report["writes"]
    assert [(r["clients"], r["tenants"], r["rows"]) for r in writes["results"]] == [(8, 1, 1), (8, 8, 1)]
    assert all(r["full_tps"] > 0 and r["bare_tps"] > 0 and r["floor_tps"] > 0 for r in writes["results"])
    assert writes["usage_exact"] and writes["messages_written"] > 0, writes
    assert "profile" not in writes  # the triggers run on the workers: no coordinator profile


def test_the_bench_on_the_cluster_leaves_no_database_or_role_on_any_node(bench_run: BenchRun) -> None:
    assert bench_run.after == bench_run.before
