"""Shard moves, splits and rebalances on a real Citus cluster (tests/citus_cluster.py), profile
citus: Citus makes the new placements from the tables' own policies, in which the helpers are
called bare, so afterwards they are no longer in the (select f()) form seeds/3995 wrote
(private.citus_shard_policies). Proven here, for a move, `rebalance_table_shards`, a split
(`isolate_tenant_to_new_shard`, `citus_split_shard_by_split_points`), the background rebalancer
(`citus_rebalance_start`) and a worker added to the running cluster and drained again: tenant
isolation holds through the new placements, every row of every table is the same before and
after, doctor's citus.placement_policies finds exactly the placements Citus made anew (and
nothing on a freshly migrated database), and the documented command (docs/scale-out.md, "After
a shard move or rebalance") puts them back in the InitPlan form, the keyed reads routed as before.

The transfer mode is `block_writes`: the test cluster runs with wal_level = replica (no
logical replication), where `auto` and `force_logical` fail ("logical decoding requires
wal_level >= logical"). A production cluster with wal_level = logical may use `auto`; what
Citus copies to the new placement is the same either way (the table's DDL)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.citus_request import citus_request
from neurant_db.cli import cli
from neurant_db.doctor_finding import Finding
from neurant_db.doctor_placements import (
    CHECK,
    READERS_REWRITE,
    REWRITE,
    placement_policy_findings,
    placement_reader_findings,
)

from .citus_cluster import TEST_SHARD_COUNT, CitusCluster, copy_of, extra_worker
from .test_citus_cluster_move import _fingerprints
from .test_citus_cluster_requests import ARGS, one, request, sign_up

TRANSFER_MODE = "block_writes"
BARE_CALL = r"(?<!SELECT )(?:public|private|auth)\.[a-z_][a-z0-9_]*\(\)"  # a helper call, deparsed with its schema
NEW_BOT = "insert into public.chatbots (company_id, name, system_prompt) values (%s, %s, 'Sell.') returning id"
NEW_CONVERSATION = "insert into public.conversations (id, company_id, chatbot_id, end_user_id, channel) " \
    "values (%s, %s, %s, 'visitor-1', 'web')"
NEW_MESSAGE = "insert into public.messages (company_id, conversation_id, sender_type, content) " \
    "values (%s, %s, 'end_user', 'hello')"


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
    owners through the documented request sequence, one chatbot each, and a conversation with
    one message each (written by the backend)."""
    with copy_of(citus_cluster, citus_migrated) as url:
        owner_a, owner_b = sign_up(url, "owner.a"), sign_up(url, "owner.b")
        company_a = str(one(url, owner_a, "select public.create_company_with_owner('Company A', null, 'free', 'Ana')"))
        company_b = str(one(url, owner_b, "select public.create_company_with_owner('Company B', null, 'free', 'Bea')"))
        for owner, company, name in ((owner_a, company_a, "A bot"), (owner_b, company_b, "B bot")):
            [[(bot,)]] = request(url, owner, [(NEW_BOT, (company, name))])
            conversation = str(uuid.uuid4())
            request(url, None, [(NEW_CONVERSATION, (conversation, company, bot)),
                                (NEW_MESSAGE, (company, conversation))], role="service_role")
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


TENANT_READS = [f"select count(*) from public.{table} where company_id = %s"
            for table in ("chatbots", "users", "conversations", "messages")] + [
    "select count(*) from public.companies where id = %s"]


def _assert_tenants_apart(t: Tenants) -> None:
    """Each owner reads its own company's rows (one of each) and none of the other company's,
    updates none of them, and an insert into the other company is refused (42501): through
    whichever placements hold them now."""
    for owner, own, other in ((t.owner_a, t.company_a, t.company_b), (t.owner_b, t.company_b, t.company_a)):
        seen = request(t.url, owner, [
            *((sql, (other,)) for sql in TENANT_READS),
            ("update public.chatbots set name = 'taken' where company_id = %s returning id", (other,)),
            ("update public.conversations set status = status where company_id = %s returning id", (other,)),
            *((sql, (own,)) for sql in TENANT_READS)])
        assert seen == [[(0,)]] * len(TENANT_READS) + [[], []] + [[(1,)]] * len(TENANT_READS), (owner, seen)
        with pytest.raises(psycopg.Error) as refused:
            request(t.url, owner, [(NEW_BOT, (other, "Planted"))])
        assert refused.value.sqlstate == "42501", refused.value


def _rows(url: str) -> dict[str, tuple[int, str]]:
    """Every table of the layout: its row count and a hash of its rows, read as superuser."""
    with psycopg.connect(url) as conn:
        tables = [str(r[0]) for r in conn.execute("select relation::text from private.citus_layout order by position")]
    return _fingerprints(url, tables)


def _rewrite_left_over(url: str) -> None:
    """What a test before left bare (each test also runs alone): every placement rewritten first."""
    if _findings(url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(REWRITE)


def _found_bare_then_rewritten(url: str, made: set[tuple[str, str]]) -> None:
    """Doctor names exactly the placements `made`, each a warning in the bare form with the
    rewrite as its fix; after the rewrite it names none."""
    findings = _findings(url)
    assert _flagged(findings) == made
    assert {(f.level, f.check, f.hint) for f in findings} == {("warning", CHECK, f"On the coordinator: {REWRITE}")}
    assert all("in the bare form" in f.message for f in findings)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(REWRITE)
    assert _findings(url) == []


def _move_one_group(conn: psycopg.Connection, source: int, target: int) -> None:
    """Move the first shard group of the worker on port `source` to the worker on `target`."""
    [(shard,)] = conn.execute("""
        select min(p.shardid) from pg_catalog.pg_dist_placement p
          join pg_catalog.pg_dist_node n on n.groupid = p.groupid
          join pg_catalog.pg_dist_shard s on s.shardid = p.shardid
         where s.logicalrelid = 'public.companies'::regclass and n.nodeport = %s""", (source,)).fetchall()
    conn.execute("select pg_catalog.citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s, %s)",
                 (shard, source, target, TRANSFER_MODE))


def _shard_of(conn: psycopg.Connection, company: str) -> tuple[int, int, int]:
    """(shard id, node id, port) of the placement of `company`'s shard of companies."""
    row = conn.execute("""
        select s.shardid, n.nodeid, n.nodeport from pg_catalog.pg_dist_shard s
          join pg_catalog.pg_dist_placement p on p.shardid = s.shardid
          join pg_catalog.pg_dist_node n on n.groupid = p.groupid
         where s.shardid = pg_catalog.get_shard_id_for_distribution_column('public.companies', %s::uuid)""",
                       (company,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


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

    # (a) isolation through the moved shard: neither owner reads or writes the other's rows, B
    # reads its own through the moved placement
    _assert_tenants_apart(t)
    assert one(t.url, t.owner_b, "select name from public.chatbots where company_id = %s", t.company_b) == "B bot"

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
            _move_one_group(conn, light, heavy)
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


def _spread(conn: psycopg.Connection) -> int:
    counts = _groups_per_worker(conn).values()
    return max(counts) - min(counts)


def _settings(url: str) -> set[tuple[str, str]]:
    """(role or '', setting name) of the settings of the database of `url` and of its roles in it."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            select coalesce(r.rolname, ''), pg_catalog.split_part(c.setting, '=', 1)
              from pg_catalog.pg_db_role_setting s left join pg_catalog.pg_roles r on r.oid = s.setrole
              cross join lateral pg_catalog.unnest(s.setconfig) c(setting)
             where s.setdatabase = (select d.oid from pg_catalog.pg_database d
                                     where d.datname = pg_catalog.current_database())""").fetchall()
    assert rows
    return {(str(role), str(name)) for role, name in rows}


REFERENCE_PLACEMENTS = """
select count(*) from pg_catalog.pg_dist_placement p join pg_catalog.pg_dist_shard s on s.shardid = p.shardid
  join pg_catalog.pg_dist_partition d on d.logicalrelid = s.logicalrelid
 where d.repmodel = 't' and p.groupid = %s"""


def test_a_worker_added_to_the_running_cluster_serves_tenants_apart_and_is_drained_and_removed_leaving_nothing(
        tenants: Tenants, citus_cluster: CitusCluster) -> None:
    """A third worker started like the cluster's nodes, `citus_add_node`, `rebalance_table_shards`
    onto it (the shard group of A or B there), then `citus_drain_node`,
    `citus_cleanup_orphaned_resources()` and `citus_remove_node`; the server stopped."""
    t = tenants
    database = t.url.rsplit("/", 1)[1]
    _rewrite_left_over(t.url)
    rows = _rows(t.url)
    with extra_worker() as port:
        new_node = f"127.0.0.1:{port}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute(f'create database "{database}"')
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/{database}", autocommit=True) as conn:
            conn.execute("create extension citus")
        before = _max_placement(t.url)
        with psycopg.connect(t.url, autocommit=True) as conn:
            # Citus's record of the database as a distributed object names this copy, not its
            # template, which the new node lacks (citus_testdb.OWN_DATABASE_OBJECT)
            assert conn.execute("select d.datname from pg_catalog.pg_dist_object o join pg_catalog.pg_database d "
                                "on d.oid = o.objid where o.classid = 'pg_catalog.pg_database'::regclass"
                                ).fetchall() == [(database,)]
            [(node,)] = conn.execute("select pg_catalog.citus_add_node('127.0.0.1', %s)", (port,)).fetchall()
            [(group,)] = conn.execute("select groupid from pg_catalog.pg_dist_node where nodeid = %s",
                                      (node,)).fetchall()
            assert _findings(t.url) == []  # Citus made the tables' shells there, no placement yet
        # and gave it the database's settings and the roles' settings in it (as worker1 has them)
        assert _settings(f"postgresql://postgres@127.0.0.1:{port}/{database}") == _settings(
            citus_cluster.url("worker1", database=database))
        with psycopg.connect(t.url, autocommit=True) as conn:
            conn.execute("select pg_catalog.rebalance_table_shards(shard_transfer_mode := %s)", (TRANSFER_MODE,))
            assert port in _groups_per_worker(conn) and _spread(conn) <= 1
            assert conn.execute(REFERENCE_PLACEMENTS, (group,)).fetchall() == conn.execute(
                "select count(*) from pg_catalog.pg_dist_partition where repmodel = 't'").fetchall()
            there = [(owner, company) for owner, company in ((t.owner_b, t.company_b), (t.owner_a, t.company_a))
                     if _shard_of(conn, company)[2] == port]
            if not there:  # the rebalancer chose other groups: B's moved there too, for the reads below
                shard, _node, at = _shard_of(conn, t.company_b)
                conn.execute("select pg_catalog.citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s, %s)",
                             (shard, at, port, TRANSFER_MODE))
                there = [(t.owner_b, t.company_b)]
        made = _new_placements(t.url, before)
        assert {n for _s, n in made} == {new_node}, made
        _assert_tenants_apart(t)
        assert _rows(t.url) == rows
        plan = _keyed_read_plan(t.url, *there[0])
        assert "Task Count: 1" in plan and f"port={port}" in plan, plan
        _found_bare_then_rewritten(t.url, made)

        # and out again: drained onto the two workers, its leftovers dropped while it is still known
        before = _max_placement(t.url)
        with psycopg.connect(t.url, autocommit=True) as conn:
            conn.execute("select pg_catalog.citus_drain_node('127.0.0.1', %s, shard_transfer_mode := %s)",
                         (port, TRANSFER_MODE))
            conn.execute("call pg_catalog.citus_cleanup_orphaned_resources()")
            assert conn.execute("select count(*) from pg_catalog.pg_dist_cleanup where node_group_id = %s",
                                (group,)).fetchall() == [(0,)]
            conn.execute("select pg_catalog.citus_remove_node('127.0.0.1', %s)", (port,))
            assert conn.execute("select count(*) from pg_catalog.pg_dist_placement where groupid = %s",
                                (group,)).fetchall() == [(0,)]
            assert set(_groups_per_worker(conn)) == set(citus_cluster.worker_ports)  # (drain_only: not rebalanced)
        made = _new_placements(t.url, before)
        assert made and new_node not in {n for _s, n in made}
        _assert_tenants_apart(t)
        assert _rows(t.url) == rows
        _found_bare_then_rewritten(t.url, made)
    with pytest.raises(psycopg.OperationalError):  # the server is stopped (and its folder deleted)
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2).close()

def test_a_split_shard_keeps_tenants_apart_and_every_row_and_the_rewrite_restores_initplans(tenants: Tenants) -> None:
    """`isolate_tenant_to_new_shard` (company B alone in a shard of its own, split out of its
    shard on the same worker) and `citus_split_shard_by_split_points` (company A's shard cut in
    two, the second half made on the other worker), `block_writes`."""
    t = tenants
    _rewrite_left_over(t.url)
    rows, before = _rows(t.url), _max_placement(t.url)
    with psycopg.connect(t.url, autocommit=True) as conn:
        [(starting,)] = conn.execute("select count(*) from pg_catalog.pg_dist_shard "
                                     "where logicalrelid = 'public.companies'::regclass").fetchall()
        [range_b] = conn.execute("select shardminvalue::bigint, shardmaxvalue::bigint from pg_catalog.pg_dist_shard "
                                 "where shardid = %s", (_shard_of(conn, t.company_b)[0],)).fetchall()
        [(isolated,)] = conn.execute("select pg_catalog.isolate_tenant_to_new_shard('public.companies', %s::uuid, "
                                     "'CASCADE', %s)", (t.company_b, TRANSFER_MODE)).fetchall()
        [(low_b, high_b)] = conn.execute("select shardminvalue::bigint, shardmaxvalue::bigint "
                                         "from pg_catalog.pg_dist_shard where shardid = %s", (isolated,)).fetchall()
        assert low_b == high_b and _shard_of(conn, t.company_b)[0] == isolated  # B's hash alone
        shard, node, _port = _shard_of(conn, t.company_a)
        [(low, high, other)] = conn.execute("""
            select s.shardminvalue::bigint, s.shardmaxvalue::bigint,
                   (select n.nodeid from pg_catalog.pg_dist_node n where n.groupid <> 0 and n.nodeid <> %s)
              from pg_catalog.pg_dist_shard s where s.shardid = %s""", (node, shard)).fetchall()
        assert low < high, "A's shard holds more than one hash value"
        conn.execute("select pg_catalog.citus_split_shard_by_split_points(%s, array[%s::text], array[%s, %s]::int[], "
                     "%s)", (shard, str((low + high) // 2), node, other, TRANSFER_MODE))
        [(shards,)] = conn.execute("select count(*) from pg_catalog.pg_dist_shard "
                                   "where logicalrelid = 'public.companies'::regclass").fetchall()
        a_half = _shard_of(conn, t.company_a)[0]
    made = _new_placements(t.url, before)
    companies = {s for s, _n in made if s.startswith("public.companies_")}
    # B's shard in three (two when B's hash ends its range), A's in two (perhaps one of those)
    assert shards == starting + 3 - (low_b == range_b[0]) - (low_b == range_b[1]), (shards, starting)
    assert {f"public.companies_{isolated}", f"public.companies_{a_half}"} <= companies, companies
    assert len({n for _s, n in made}) == 2  # the split's second half on the other worker

    _assert_tenants_apart(t)
    assert _rows(t.url) == rows  # every row moved once: no trigger ran again on the copy
    plan = _keyed_read_plan(t.url, t.owner_b, t.company_b)
    assert "Task Count: 1" in plan and _helpers_in_conditions(plan) != [], plan
    _found_bare_then_rewritten(t.url, made)
    plan = _keyed_read_plan(t.url, t.owner_b, t.company_b)
    assert "Task Count: 1" in plan and "InitPlan" in plan and _helpers_in_conditions(plan) == [], plan
    # the split's new shards of chatbots and chatbot_operators are not named by the placement
    # readers (functions/4800) until they are written again: doctor names each, the tenants
    # still read their own rows (the dynamic query), and the rewrite names them all
    with psycopg.connect(t.url, autocommit=True) as conn:
        unnamed = {f.object for f in placement_reader_findings(conn)}
        assert unnamed == {s for s, _n in made if s.startswith(("public.chatbots_", "public.chatbot_operators_"))}
        assert unnamed and all(f.hint == f"On the coordinator: {READERS_REWRITE}"
                               for f in placement_reader_findings(conn))
        _assert_tenants_apart(t)
        conn.execute(READERS_REWRITE)
        assert list(placement_reader_findings(conn)) == []
    _assert_tenants_apart(t)


@contextmanager
def _task_queue_checked_often(conn: psycopg.Connection) -> Iterator[None]:
    """Citus's maintenance daemon looks for a new background job every
    citus.background_task_queue_interval (5 s): latency only, cut to 0.2 s on the coordinator
    while a test waits for a job."""
    conn.execute("alter system set citus.background_task_queue_interval = '200ms'")
    conn.execute("select pg_catalog.pg_reload_conf()")
    try:
        yield
    finally:
        conn.execute("alter system reset citus.background_task_queue_interval")
        conn.execute("select pg_catalog.pg_reload_conf()")


def test_the_background_rebalancer_keeps_tenants_apart_and_every_row_and_its_placements_are_found_and_rewritten(
        tenants: Tenants) -> None:
    """`citus_rebalance_start` (a background job run by Citus's task executors) then
    `citus_rebalance_wait`."""
    t = tenants
    with psycopg.connect(t.url, autocommit=True) as conn:
        if _spread(conn) <= 1:  # balanced: the heavier worker given one more shard group first
            counts = _groups_per_worker(conn)
            light, heavy = sorted(counts, key=lambda port: (counts[port], port))[::len(counts) - 1]
            _move_one_group(conn, light, heavy)
        assert _spread(conn) > 1
    _rewrite_left_over(t.url)
    rows, before = _rows(t.url), _max_placement(t.url)
    with psycopg.connect(t.url, autocommit=True) as conn, _task_queue_checked_often(conn):
        [(job,)] = conn.execute("select pg_catalog.citus_rebalance_start(shard_transfer_mode := %s)",
                                (TRANSFER_MODE,)).fetchall()
        assert job is not None
        conn.execute("select pg_catalog.citus_rebalance_wait()")
        [(state,)] = conn.execute("select state::text from pg_catalog.pg_dist_background_job where job_id = %s",
                                  (job,)).fetchall()
        assert state == "finished"
        assert _spread(conn) <= 1
    made = _new_placements(t.url, before)
    assert len(made) > 20  # one shard group at least
    _assert_tenants_apart(t)
    assert _rows(t.url) == rows
    _found_bare_then_rewritten(t.url, made)
