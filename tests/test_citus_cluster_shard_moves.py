"""Shard moves and a rebalance on a real Citus cluster (tests/citus_cluster.py), profile citus:
Citus makes the new placements from the tables' own policies, in which the helpers are called
bare, so after a move they are no longer in the (select f()) form seeds/3995 wrote
(private.citus_shard_policies). Proven here: tenant isolation holds through a moved shard,
doctor's citus.placement_policies finds exactly the placements Citus made anew (and nothing on
a freshly migrated database), and the documented command (docs/scale-out.md, "After a shard
move or rebalance") puts them back in the InitPlan form, the keyed reads routed as before.

The transfer mode is `block_writes`: the test cluster runs with wal_level = replica (no
logical replication), where `auto` and `force_logical` fail ("logical decoding requires
wal_level >= logical"). A production cluster with wal_level = logical may use `auto`; what
Citus copies to the new placement is the same either way (the table's DDL)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.citus_request import citus_request
from neurant_db.cli import cli
from neurant_db.doctor_finding import Finding
from neurant_db.doctor_placements import CHECK, REWRITE, placement_policy_findings

from .citus_cluster import TEST_SHARD_COUNT, CitusCluster, copy_of
from .test_citus_cluster_requests import ARGS, one, request, sign_up

TRANSFER_MODE = "block_writes"
BARE_CALL = r"(?<!SELECT )(?:public|private|auth)\.[a-z_][a-z0-9_]*\(\)"  # a helper call, deparsed with its schema
NEW_BOT = "insert into public.chatbots (company_id, name, system_prompt) values (%s, %s, 'Sell.') returning id"


@dataclass(frozen=True)
class Tenants:
    url: str
    owner_a: str
    owner_b: str
    company_a: str
    company_b: str


@pytest.fixture(scope="module")
def tenants(citus_cluster: CitusCluster, citus_migrated: str) -> Iterator[Tenants]:
    """A copy of the session's migrated distributed database, two companies made by their
    owners through the documented request sequence, one chatbot each."""
    with copy_of(citus_cluster, citus_migrated) as url:
        owner_a, owner_b = sign_up(url, "owner.a"), sign_up(url, "owner.b")
        company_a = str(one(url, owner_a, "select public.create_company_with_owner('Company A', null, 'free', 'Ana')"))
        company_b = str(one(url, owner_b, "select public.create_company_with_owner('Company B', null, 'free', 'Bea')"))
        request(url, owner_a, [(NEW_BOT, (company_a, "A bot"))])
        request(url, owner_b, [(NEW_BOT, (company_b, "B bot"))])
        yield Tenants(url, owner_a, owner_b, company_a, company_b)


def _findings(url: str) -> list[Finding]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(placement_policy_findings(conn))


def _new_placements(url: str, after: int) -> set[tuple[str, str]]:
    """(shard, node) of the placements Citus made after placement id `after` (its placement ids
    only grow), of the tables whose policies call a helper (those the rewrite changes): what
    the check must name."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set search_path = pg_catalog")  # every helper deparsed with its schema
        rows = conn.execute("""
            select pg_catalog.shard_name(s.logicalrelid, s.shardid, false), n.nodename || ':' || n.nodeport
              from pg_catalog.pg_dist_placement p join pg_catalog.pg_dist_shard s on s.shardid = p.shardid
              join pg_catalog.pg_dist_node n on n.groupid = p.groupid
             where p.placementid > %s
               and exists (select 1 from pg_catalog.pg_policy y where y.polrelid = s.logicalrelid
                             and coalesce(pg_catalog.pg_get_expr(y.polqual, y.polrelid), '') || ' '
                                 || coalesce(pg_catalog.pg_get_expr(y.polwithcheck, y.polrelid), '') ~ %s)""",
                            (after, BARE_CALL)).fetchall()
    return {(str(shard), str(node)) for shard, node in rows}


def _flagged(findings: list[Finding]) -> set[tuple[str, str]]:
    """(shard, node) each finding names."""
    out = set()
    for f in findings:
        node = re.search(r" on node ([0-9.]+:[0-9]+)", f.message)
        assert node is not None, f.message
        out.add((f.object, node[1]))
    return out


def _max_placement(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select max(placementid) from pg_catalog.pg_dist_placement").fetchone()
    assert row is not None
    return int(row[0])


def _groups_per_worker(conn: psycopg.Connection) -> dict[int, int]:
    """Shard groups (shards of companies) per worker port."""
    rows = conn.execute("""
        select n.nodeport, count(*) from pg_catalog.pg_dist_placement p
          join pg_catalog.pg_dist_node n on n.groupid = p.groupid
          join pg_catalog.pg_dist_shard s on s.shardid = p.shardid
         where s.logicalrelid = 'public.companies'::regclass group by 1""").fetchall()
    return {int(port): int(count) for port, count in rows}


def _keyed_read_plan(url: str, owner: str, company: str) -> str:
    """The plan (with the worker's) of the owner's keyed chatbot list, as the owner sends it."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction(force_rollback=True), \
            citus_request(conn, {"sub": owner, "role": "authenticated"}) as r:
        rows = r.execute("explain (verbose) select id, name from public.chatbots where company_id = %s",
                         (company,)).fetchall()
    return "\n".join(str(row[0]) for row in rows)


def _helpers_in_conditions(plan: str) -> list[str]:
    return [line.strip() for line in plan.splitlines()
            if line.strip().startswith(("Index Cond:", "Filter:", "One-Time Filter:")) and "private." in line]


def test_a_moved_shard_keeps_tenants_apart_is_found_bare_by_doctor_and_the_rewrite_restores_initplans(
        tenants: Tenants) -> None:
    t = tenants
    assert _findings(t.url) == []  # freshly migrated: every placement as seeds/3995 wrote it
    with psycopg.connect(t.url, autocommit=True) as conn:
        shard, source, group = conn.execute("""
            select s.shardid, n.nodeport, n.groupid from pg_catalog.pg_dist_placement p
              join pg_catalog.pg_dist_node n on n.groupid = p.groupid
              join pg_catalog.pg_dist_shard s on s.shardid = p.shardid
             where s.shardid = pg_catalog.get_shard_id_for_distribution_column('public.companies', %s::uuid)""",
                                            (t.company_b,)).fetchone() or (None, None, None)
        target = conn.execute("select nodeport from pg_catalog.pg_dist_node where groupid not in (0, %s)",
                              (group,)).fetchone()
        assert shard is not None and target is not None
        before = _max_placement(t.url)
        conn.execute("select pg_catalog.citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s, %s)",
                     (shard, source, target[0], TRANSFER_MODE))
    moved = _new_placements(t.url, before)
    # the whole shard group of company B (every colocated table with policies) is on the target now
    assert len(moved) > 20 and {node for _s, node in moved} == {f"127.0.0.1:{target[0]}"}
    assert f"public.companies_{shard}" in {s for s, _n in moved}

    # (a) isolation through the moved shard: owner A neither reads nor writes company B's rows
    b_bot = one(t.url, t.owner_b, "select id from public.chatbots where company_id = %s", t.company_b)
    assert b_bot is not None  # B is served by the moved placement
    seen = request(t.url, t.owner_a, [
        ("select count(*) from public.chatbots where company_id = %s", (t.company_b,)),
        ("select count(*) from public.users where company_id = %s", (t.company_b,)),
        ("select count(*) from public.companies where id = %s", (t.company_b,)),
        ("update public.chatbots set name = 'taken' where company_id = %s returning id", (t.company_b,)),
        ("select count(*) from public.chatbots where company_id = %s", (t.company_a,)),
    ])
    assert seen == [[(0,)], [(0,)], [(0,)], [], [(1,)]]
    with pytest.raises(psycopg.Error) as refused:
        request(t.url, t.owner_a, [(NEW_BOT, (t.company_b, "Planted"))])
    assert refused.value.sqlstate == "42501", refused.value
    assert one(t.url, t.owner_b, "select name from public.chatbots where id = %s", b_bot) == "B bot"

    # (b) doctor finds exactly the placements the move made, bare, on the target, with the fix
    findings = _findings(t.url)
    assert _flagged(findings) == moved
    assert {(f.level, f.check, f.hint) for f in findings} == {("warning", CHECK, f"On the coordinator: {REWRITE}")}
    assert all("in the bare form" in f.message for f in findings)
    plan = _keyed_read_plan(t.url, t.owner_b, t.company_b)
    assert "Task Count: 1" in plan and f"port={target[0]}" in plan, plan
    assert _helpers_in_conditions(plan) != [], plan  # a bare helper call: evaluated in the scan's conditions
    cli_run = CliRunner().invoke(cli, ["--database-url", t.url, *ARGS, "doctor", "--json", "--no-schema-check"])
    assert cli_run.exit_code == 0, cli_run.output  # warnings only: access is as the tables say
    assert {f["object"] for f in json.loads(cli_run.output) if f["check"] == CHECK} == {s for s, _n in moved}

    # (c) the documented command: InitPlans again, the read still routed to the one moved shard
    with psycopg.connect(t.url, autocommit=True) as conn:
        conn.execute(REWRITE)
    assert _findings(t.url) == []
    plan = _keyed_read_plan(t.url, t.owner_b, t.company_b)
    assert "Task Count: 1" in plan and f"port={target[0]}" in plan, plan
    assert "InitPlan" in plan and _helpers_in_conditions(plan) == [], plan
    assert one(t.url, t.owner_b, "select count(*) from public.chatbots where company_id = %s", t.company_b) == 1
    assert one(t.url, t.owner_a, "select count(*) from public.chatbots where company_id = %s", t.company_b) == 0


def test_a_rebalance_leaves_its_new_placements_bare_until_the_rewrite(tenants: Tenants) -> None:
    t = tenants
    with psycopg.connect(t.url, autocommit=True) as conn:
        if _findings(t.url):  # what a test before left: every placement rewritten first
            conn.execute(REWRITE)
        before = _max_placement(t.url)
        counts = _groups_per_worker(conn)
        if len(set(counts.values())) == 1:  # balanced (this test alone): one shard group moved first
            light, heavy = sorted(counts)
            [(shard,)] = conn.execute("""
                select min(p.shardid) from pg_catalog.pg_dist_placement p
                  join pg_catalog.pg_dist_node n on n.groupid = p.groupid
                  join pg_catalog.pg_dist_shard s on s.shardid = p.shardid
                 where s.logicalrelid = 'public.companies'::regclass and n.nodeport = %s""", (light,)).fetchall()
            conn.execute("select pg_catalog.citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s, %s)",
                         (shard, light, heavy, TRANSFER_MODE))
        conn.execute("select pg_catalog.rebalance_table_shards(threshold := 0.01, shard_transfer_mode := %s)",
                     (TRANSFER_MODE,))
        after = _groups_per_worker(conn)
    half = TEST_SHARD_COUNT // 2
    assert sorted(after.values()) == [half, half], after  # the rebalancer moved shard groups
    made = _new_placements(t.url, before)
    assert len(made) > 20  # one shard group at least
    findings = _findings(t.url)
    assert _flagged(findings) == made and {f.level for f in findings} == {"warning"}
    with psycopg.connect(t.url, autocommit=True) as conn:
        conn.execute(REWRITE)
    assert _findings(t.url) == []
    assert one(t.url, t.owner_a, "select count(*) from public.chatbots where company_id = %s", t.company_a) == 1
    assert one(t.url, t.owner_a, "select count(*) from public.chatbots where company_id = %s", t.company_b) == 0


def test_doctor_names_a_placement_whose_access_differs_and_its_fix_mends_it(
        tenants: Tenants, citus_cluster: CitusCluster) -> None:
    """A placement without its table's policy, with one more, with a condition of its own and
    row level security not forced: an error naming the shard, the worker and the statements
    that mend it there."""
    t = tenants
    database = t.url.rsplit("/", 1)[1]
    with psycopg.connect(t.url, autocommit=True) as conn:
        if _findings(t.url):
            conn.execute(REWRITE)
        [(shard, port)] = conn.execute("""
            select pg_catalog.shard_name(s.logicalrelid, s.shardid, false), n.nodeport
              from pg_catalog.pg_dist_placement p join pg_catalog.pg_dist_node n on n.groupid = p.groupid
              join pg_catalog.pg_dist_shard s on s.shardid = p.shardid
             where s.shardid = pg_catalog.get_shard_id_for_distribution_column('public.chatbots', %s::uuid)""",
                                       (t.company_a,)).fetchall()
    node = next(n for n, p in citus_cluster.ports.items() if p == port)
    with psycopg.connect(citus_cluster.url(node, database=database), autocommit=True) as worker:
        worker.execute(f"alter table {shard} no force row level security")
        worker.execute(f"drop policy select_visible on {shard}")
        worker.execute(f"alter policy insert_as_admin on {shard} with check (true)")
        worker.execute(f"create policy planted on {shard} for select using (true)")
    [finding] = _findings(t.url)
    assert (finding.level, finding.object) == ("error", shard)
    assert f"on node 127.0.0.1:{port}" in finding.message
    for words in ("policy insert_as_admin not as", "policy planted not a policy of public.chatbots",
                  "policy select_visible missing", "row level security is not enabled and forced"):
        assert words in finding.message, finding.message
    on_node, rest = finding.hint.split(": ", 1)
    assert on_node == f"On node 127.0.0.1:{port}" and rest.endswith(f"Then, on the coordinator: {REWRITE}")
    cli_run = CliRunner().invoke(cli, ["--database-url", t.url, *ARGS, "doctor", "--json", "--no-schema-check"])
    assert cli_run.exit_code == 1 and [f["object"] for f in json.loads(cli_run.output) if f["level"] == "error"] == [
        shard], cli_run.output
    with psycopg.connect(citus_cluster.url(node, database=database), autocommit=True) as worker:
        worker.execute(rest.split(" Then, on the coordinator: ", 1)[0])
    # access mended: what is left is the bare form of the recreated policies, a warning that
    # the rewrite clears (the first test)
    [finding] = _findings(t.url)
    assert (finding.level, finding.object, finding.hint) == ("warning", shard, f"On the coordinator: {REWRITE}")
    assert "policies insert_as_admin, select_visible in the bare form" in finding.message, finding.message
