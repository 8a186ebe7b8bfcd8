"""`neurant-db bench` at toy scale: its timings are not asserted (speed is measured,
not tested), but every hot query must return exactly the same rows under RLS as
the explicit tenant filter without RLS - otherwise the ratios compare different work."""

from __future__ import annotations

import json
from typing import Any

from neurant_db import bench
from neurant_db.database import DatabaseTarget, connect
from neurant_db.migrate import migrate
from neurant_db.render import render_all
from neurant_db.testdb import test_settings


def test_rls_returns_the_same_rows_as_the_explicit_tenant_filter(scratch_db: str) -> None:
    settings = test_settings()
    migrate(DatabaseTarget(scratch_db), render_all(settings), settings)
    results = bench.run(DatabaseTarget(scratch_db), companies=4, conversations=20, messages=3, iterations=10,
                        echo=lambda _line: None, rounds=1)
    assert [r["query"] for r in results] == [q.name for q in bench.QUERIES]
    assert all(r["same_rows"] for r in results), results
    assert all(r["baseline_us"] > 0 and r["rls_keyed_us"] > 0 for r in results)
    # each result says where the client and the backend ran (pinned to two CPUs, or why not)
    assert all(r["cpus"].startswith(("client on CPU", "not pinned")) for r in results), results


def test_the_bench_says_how_the_server_planned_each_variant(scratch_db: str) -> None:
    """A custom plan is planned again at every execution: a ratio is only read right
    knowing which variant pays planning, so each result names it."""
    settings = test_settings()
    migrate(DatabaseTarget(scratch_db), render_all(settings), settings)
    results = bench.run(DatabaseTarget(scratch_db), companies=4, conversations=20, messages=3, iterations=10,
                        echo=lambda _line: None, rounds=1)
    for r in results:
        assert set(r["plan_cache"]) == {"baseline", "rls+key", "rls"}, r
        assert all(v in ("generic", "custom") or v.endswith(" custom") for v in r["plan_cache"].values()), r


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


def _plans(scratch_db: str) -> dict[str, dict[str, Any]]:
    """Plans of every hot query and variant on a toy data set, sequential scans
    disabled: the question is whether an index CAN serve the tenant filter (at toy
    size the planner would rightly prefer a sequential scan). Plans, never timings."""
    settings = test_settings()
    migrate(DatabaseTarget(scratch_db), render_all(settings), settings)
    with connect(scratch_db, autocommit=True) as conn:
        bench.load(conn, 4, 20, 3)
        conn.execute("set enable_seqscan = off")
        return bench.explain(conn, 4, fmt="json", analyze=False)


def test_every_hot_query_has_an_index_condition_on_company_id(scratch_db: str) -> None:
    for query, by_variant in _plans(scratch_db).items():
        for variant, plan in by_variant.items():
            nodes = _nodes(plan[0]["Plan"])
            assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (query, variant)
            conds = [n.get("Index Cond", "") for n in nodes if n.get("Relation Name") or "Index" in n["Node Type"]]
            assert any("company_id" in c for c in conds), (query, variant, json.dumps(plan, indent=1))


def test_operador_inbox_reads_only_the_assigned_chatbots_conversations(scratch_db: str) -> None:
    """The operador branch of the policy is an index condition (chatbot_id = any (...)),
    not a filter over every conversation of the tenant - from PostgreSQL 17 on. Before 17,
    btree could not take `= any` on a column after the first one into an ordered scan (and
    the planner keeps it out of the bitmap scan too): there the tenant's conversations are
    read through the (company_id, chatbot_id, last_message_at) index and filtered, which is
    what this test then proves, so that a regression to another index or a sequential scan
    still fails on 15."""
    plans = _plans(scratch_db)["operador inbox (assigned chatbots only)"]
    with connect(scratch_db) as conn:
        version = int(str(conn.execute("show server_version_num").fetchone()[0]))  # type: ignore[index]
    for variant in ("rls+key", "rls"):
        nodes = _nodes(plans[variant][0]["Plan"])
        scans = [n for n in nodes if n.get("Relation Name") == "conversations" or "Index" in n["Node Type"]]
        if version >= 170000:
            assert any("chatbot_id" in n.get("Index Cond", "") for n in scans), (variant, json.dumps(plans[variant]))
            assert not any("chatbot_id" in n.get("Filter", "") for n in scans), variant
        else:
            indexes = {n.get("Index Name") for n in scans} - {None}
            assert indexes == {"conversations_chatbot_last_message_idx"}, (variant, json.dumps(plans[variant]))
            assert any("chatbot_id" in n.get("Filter", "") for n in scans), variant


def test_the_write_benchmark_counts_usage_exactly_and_measures_full_bare_and_floor(scratch_db: str) -> None:
    """The write benchmark at toy scale (1 s runs, no repeats): every variant writes, the
    floor's one-statement write path runs, and usage equals the messages written."""
    from neurant_db import bench_writes

    if bench_writes.find_pgbench() is None:  # the embedded server ships pgbench
        import pytest

        pytest.skip("pgbench not found (embedded server or Debian's postgresql packages)")
    settings = test_settings()
    migrate(DatabaseTarget(scratch_db), render_all(settings), settings)
    with connect(scratch_db, autocommit=True) as conn:
        bench.load(conn, 8, 20, 2)
    out = bench_writes.run(DatabaseTarget(scratch_db), nconv=20, seconds=1, repeats=1, echo=lambda _line: None,
                           with_profile=False, copy_rows=200)
    assert out["usage_exact"], out
    assert out["copy"]["full_s"] > 0 and out["copy"]["bare_s"] > 0, out["copy"]
    assert out["messages_written"] > 0
    assert {(r["clients"], r["tenants"], r["rows"]) for r in out["results"]} == {
        (8, 1, 1), (8, 8, 1), (8, 1, 20), (8, 8, 20)}
    for r in out["results"]:
        assert r["full_tps"] > 0 and r["bare_tps"] > 0 and r["floor_tps"] > 0, r
    with connect(scratch_db) as conn:
        row = conn.execute("select (select count(*) from bench.company_message_usage where total_message_count > 0), "
                           "(select count(*) from bench.conversations where updated_at > now() - interval '1 hour')"
                           ).fetchone()
    assert row is not None and row[0] > 0 and row[1] > 0, "the floor wrote no usage or conversation activity"


def test_bench_with_profile_citus_refuses_anything_but_a_citus_coordinator(scratch_db: str) -> None:
    # Profile citus measures a cluster: no server named, or one plain PostgreSQL server (here
    # the test server), is refused before anything is created, with what to pass instead.
    from click.testing import CliRunner

    from neurant_db.cli import cli

    def databases() -> set[str]:
        with connect(scratch_db) as conn:
            return {r[0] for r in conn.execute("select datname from pg_database")}

    before = databases()
    for args in (["--profile", "citus", "bench"], ["--profile", "citus", "--database-url", scratch_db, "bench"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code != 0, result.output
        assert "bench with profile citus" in result.output and "--database-url" in result.output, result.output
    assert "not a Citus coordinator with workers" in result.output
    assert databases() == before
