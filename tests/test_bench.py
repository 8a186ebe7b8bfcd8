"""`neurant-db bench` at toy scale: its timings are not asserted (speed is measured,
not tested), but every hot query must return exactly the same rows under RLS as
the explicit tenant filter without RLS - otherwise the ratios compare different work."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from neurant_db import bench
from neurant_db.database import DatabaseTarget, connect
from neurant_db.migrate import migrate
from neurant_db.render import render_all
from neurant_db.testdb import TestDatabase, test_settings

from .conftest import scratch_database


@pytest.fixture(scope="module")
def toy_run(neurant_server: TestDatabase) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """One toy-scale read bench (every variant, both plan modes), shared by the tests that
    read its results: (database, results)."""
    with scratch_database(neurant_server.url) as url:
        settings = test_settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        yield url, bench.run(DatabaseTarget(url), companies=4, conversations=20, messages=3, iterations=10,
                             echo=lambda _line: None, rounds=1)


LABELS = {"baseline", "rls+key", "rls", "copy", *(f"{s.key}+key" for s in bench.PEER_SHAPES),
          *(s.key for s in bench.PEER_SHAPES)}


def test_rls_and_every_peer_shape_return_the_same_rows_as_the_explicit_tenant_filter(
        toy_run: tuple[str, list[dict[str, Any]]]) -> None:
    db, results = toy_run
    assert [r["query"] for r in results] == [q.name for q in bench.QUERIES]
    assert all(set(r["variants"]) == LABELS for r in results), results[0]["variants"].keys()
    assert all(r["same_rows"] for r in results), results
    assert all(r["baseline_us"] > 0 and r["rls_keyed_us"] > 0 for r in results)
    # each result says where the client and the backend ran (pinned to two CPUs, or why not)
    assert all(r["cpus"].startswith(("client on CPU", "not pinned")) for r in results), results
    # the copies, their roles and policies are gone afterwards
    with connect(db) as conn:
        assert conn.execute("select to_regnamespace(%s)", (bench.PEER_SCHEMA,)).fetchone() == (None,)
        assert conn.execute("select count(*) from pg_roles where rolname like 'neurant_bench_%'").fetchone() == (0,)


def test_candidate_shapes_of_ours_return_ours_rows_and_leave_nothing_behind(neurant_server: TestDatabase) -> None:
    """`bench --candidates` (issue 21, item 4): a candidate of our own policy is timed on the
    copies only if it returns ours' rows (the operador scoped to its chatbots without the
    query sending the filter), and the run leaves the real schema as it found it (no role,
    no policy of a candidate on private.chatbot_visibility)."""
    with scratch_database(neurant_server.url) as url:
        settings = test_settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        results = bench.run(DatabaseTarget(url), companies=4, conversations=20, messages=3, iterations=10,
                            echo=lambda _line: None, rounds=1, candidates=True)
        candidates = {s.key for s in bench.CANDIDATE_SHAPES}
        assert candidates and all(s.candidate and s.fresh for s in bench.CANDIDATE_SHAPES)
        for r in results:
            assert {*candidates, *(f"{k}+key" for k in candidates)} <= set(r["variants"]), r["variants"].keys()
            assert r["same_rows"], r["query"]
        with connect(url) as conn:
            assert conn.execute("select count(*) from pg_roles where rolname like 'neurant_bench_%'").fetchone() == (0,)
            assert conn.execute("select count(*) from pg_policy where polname like 'bench%'").fetchone() == (0,)
            assert conn.execute("select to_regnamespace(%s)", (bench.PEER_SCHEMA,)).fetchone() == (None,)


def test_every_variant_is_timed_under_a_generic_and_a_custom_plan_and_the_faster_counts(
        toy_run: tuple[str, list[dict[str, Any]]]) -> None:
    """The baseline held to its slower plan makes every ratio look better than it is (issue
    21): each variant runs under plan_cache_mode force_generic_plan and force_custom_plan,
    the server kept to each (pg_prepared_statements: a statement without parameters has
    only the one plan, generic), and the faster one is the variant's."""
    _db, results = toy_run
    for q, r in zip(bench.QUERIES, results, strict=True):
        assert set(r["plan_cache"]) == LABELS, r
        sql = {label: text for label, _role, text in bench._variants(q, peers=True)}
        for label, v in r["variants"].items():
            assert set(v["us_by_plan"]) == {"generic", "custom"}, (r["query"], label, v)
            assert v["us"] == min(v["us_by_plan"].values()) and v["us_by_plan"][v["plan"]] == v["us"], v
            assert r["plan_cache"][label] == v["plan"]
            assert r["plans_held"][f"{label} generic"] == "generic", (r["query"], label, r["plans_held"])
            custom = "custom" if "%(" in sql[label] else "generic"
            assert r["plans_held"][f"{label} custom"] == custom, (r["query"], label, r["plans_held"])
        assert r["ratio_rls_keyed"] == r["variants"]["rls+key"]["ratio"]


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


def _index_defs(conn: Any, schema: str, table: str) -> list[str]:
    """The table's index definitions with names and schema left out."""
    rows = conn.execute("select pg_get_indexdef(i.indexrelid) from pg_index i "
                        "where i.indrelid = (%s || '.' || %s)::regclass", (schema, table)).fetchall()
    return sorted(re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON \S+", r"CREATE \1INDEX ON", r[0]) for r in rows)


def test_the_peer_shapes_run_on_copies_with_the_rows_and_indexes_of_the_real_tables(scratch_db: str) -> None:
    """The peers' ratios compare policies, not data or indexes: their copies hold the same
    rows and every index of the real table (same columns, order, predicates), and building
    and dropping them leaves the real schema's policies as they were."""
    settings = test_settings()
    migrate(DatabaseTarget(scratch_db), render_all(settings), settings)
    with connect(scratch_db, autocommit=True) as conn:
        bench.load(conn, 4, 20, 3)
        policies = conn.execute("select count(*) from pg_policies where schemaname = 'public'").fetchone()
        bench.build_peers(conn)
        for table in bench.HOT_TABLES:
            real = _index_defs(conn, "public", table)
            assert real and _index_defs(conn, bench.PEER_SCHEMA, table) == real, table
            assert conn.execute(f"select count(*) from (select * from public.{table} except all "
                                f"select * from {bench.PEER_SCHEMA}.{table}) d").fetchone() == (0,), table
            assert conn.execute(f"select (select count(*) from public.{table}) = "
                                f"(select count(*) from {bench.PEER_SCHEMA}.{table})").fetchone() == (True,)
            shapes = {r[0] for r in conn.execute("select policyname from pg_policies where schemaname = %s "
                                                 "and tablename = %s", (bench.PEER_SCHEMA, table))}
            assert shapes == {s.key for s in bench.PEER_SHAPES}, shapes
        bench.drop_peers(conn)
        assert conn.execute("select count(*) from pg_policies where schemaname = 'public'").fetchone() == policies


def test_every_keyed_peer_variant_reads_the_tenant_through_an_index(scratch_db: str) -> None:
    """With the key sent, every peer shape (and the baseline on the copies) has an index
    condition on company_id, as the baseline does: their ratios are the policies' cost, not
    a plan that lost the index. Without the key, the shapes that give the planner a value
    (the array of tenants, the claim) keep it; basejump's per-row call cannot (what its
    ratio shows)."""
    settings = test_settings()
    migrate(DatabaseTarget(scratch_db), render_all(settings), settings)
    with connect(scratch_db, autocommit=True) as conn:
        bench.load(conn, 4, 20, 3)
        bench.build_peers(conn)
        conn.execute("set enable_seqscan = off")
        plans = bench.explain(conn, 4, fmt="json", analyze=False, peers=True)
        bench.drop_peers(conn)
    keyed = ["copy", *(f"{s.key}+key" for s in bench.PEER_SHAPES), "tenant_array", "jwt_claim"]
    for query, by_variant in plans.items():
        assert set(by_variant) == LABELS, by_variant.keys()
        for variant in keyed:
            nodes = _nodes(by_variant[variant][0]["Plan"])
            assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], (query, variant)
            conds = [n.get("Index Cond", "") for n in nodes if "Index" in n["Node Type"]]
            assert any("company_id" in c for c in conds), (query, variant, json.dumps(by_variant[variant], indent=1))
        nodes = _nodes(by_variant["basejump"][0]["Plan"])
        assert not any("company_id" in n.get("Index Cond", "") for n in nodes), (query, by_variant["basejump"])


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
    # one (clients, tenants) configuration at toy scale: the mechanics, not the numbers
    out = bench_writes.run(DatabaseTarget(scratch_db), nconv=20, seconds=1, repeats=1, echo=lambda _line: None,
                           with_profile=False, copy_rows=200, configs=[(8, 1)])
    assert out["usage_exact"], out
    # both COPYs ran and were timed (their seconds are rounded to 0.01: 200 rows may read 0.0)
    assert out["copy"]["rows"] == 200 and out["copy"]["ratio"] > 0, out["copy"]
    assert out["messages_written"] > 0
    assert {(r["clients"], r["tenants"], r["rows"]) for r in out["results"]} == {(8, 1, 1), (8, 1, 20)}
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
