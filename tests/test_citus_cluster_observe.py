"""Per-tenant observability on a real Citus cluster (tests/citus_cluster.py): the metrics
job of functions/4300 samples each tenant's bytes from the distributed tables (their size
from citus_total_relation_size), and `neurant-db top` ranks the tenants and reads Citus's
per-tenant statistics (citus_stat_tenants) once citus.stat_tenants_track = 'all'."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli

from .citus_cluster import NODES, CitusCluster, copy_of
from .test_citus_cluster_requests import ARGS, one, request, sign_up


def invoke(url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--database-url", url, *ARGS, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def tracked(citus_cluster: CitusCluster) -> Iterator[CitusCluster]:
    """citus.stat_tenants_track = 'all' on every node for this module, 'none' again after it."""
    def track(value: str) -> None:
        for node in NODES:
            with psycopg.connect(citus_cluster.url(node), autocommit=True) as conn:
                conn.execute(f"alter system set citus.stat_tenants_track = '{value}'")
                conn.execute("select pg_reload_conf()")
    track("all")
    try:
        yield citus_cluster
    finally:
        track("none")


def test_on_citus_the_metrics_job_samples_tenant_bytes_and_top_reads_citus_stat_tenants(
        tracked: CitusCluster, citus_migrated: str) -> None:
    with copy_of(tracked, citus_migrated) as url:
        owners = [sign_up(url, f"owner.{n}") for n in ("a", "b")]
        companies = [str(one(url, o, "select public.create_company_with_owner(%s, null, 'free', 'Ana')", f"Co {i}"))
                     for i, o in enumerate(owners)]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("update public.companies set subscription_plan = 'enterprise' where id = any(%s::uuid[])",
                         (companies,))
        for company, owner, n in ((companies[0], owners[0], 6), (companies[1], owners[1], 2)):
            bot = one(url, owner, "insert into public.chatbots (company_id, name, system_prompt) "
                      "values (%s, 'Support', 'Be kind.') returning id", company)
            conversation = one(url, None, "insert into public.conversations (company_id, chatbot_id, end_user_id, "
                               "channel) values (%s, %s, 'visitor-1', 'web') returning id", company, bot,
                               role="service_role")
            request(url, None, [("insert into public.messages (company_id, conversation_id, sender_type, content) "
                                 "values (%s, %s, 'end_user', repeat('x', 500))", (company, conversation))] * n,
                    role="service_role")
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(5):  # router queries of company A: counted by citus_stat_tenants
                conn.execute("select count(*) from public.messages where company_id = %s", (companies[0],))
        invoke(url, "jobs", "run", "metrics")
        with psycopg.connect(url, autocommit=True) as conn:
            total: dict[str, float] = dict(conn.execute(
                "select labels->>'company_id', value from public.system_metrics "
                "where metric_name = 'tenant.total_bytes'").fetchall())
            ours = conn.execute("select value from public.system_metrics where metric_name = 'tenant.row_bytes' "
                                "and labels = jsonb_build_object('company_id', %s::text, 'table', 'public.messages')",
                                (companies[0],)).fetchone()
            theirs = conn.execute("select sum(pg_column_size(m.*)) from public.messages m where company_id = %s",
                                  (companies[0],)).fetchone()
        assert set(total) == set(companies) and all(v > 0 for v in total.values())
        assert ours is not None and theirs is not None and ours[0] == theirs[0]
        out = invoke(url, "top", "--json")
        report = json.loads(out[out.index("{"):])
        assert [(t["company_id"], t["messages"]) for t in report["by_messages"]] == [(companies[0], 6),
                                                                                   (companies[1], 2)]
        assert report["citus"]["stat_tenants_track"] == "all"
        queries = {t["company_id"]: t["queries"] for t in report["citus"]["tenants"]}
        assert queries.get(companies[0], 0) >= 5, report["citus"]
        assert "Citus tenants" in invoke(url, "top")
