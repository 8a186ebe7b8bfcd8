"""What the policy helpers read on a real Citus cluster (tests/citus_cluster.py), every
request sent the documented way (neurant_db.citus_request): issue 19's failure 8 (25001
after a member's own write) and the plans of the hot reads under RLS (one shard, the
helpers evaluated once per statement, not per row). Timings are not asserted: they are measured
by tests/citus_read_speed.py (docs/scale-out.md, "Reads under RLS")."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest

from neurant_db.citus_request import citus_request
from neurant_db.doctor_placements import READERS_CHECK, READERS_REWRITE, placement_reader_findings

from . import citus_read_speed as reads
from .citus_cluster import TEST_SHARD_COUNT, CitusCluster, copy_of

ARGS = ["--profile", "citus", "--embedding-dimensions", "8"]
C = reads.COMPANY
NEW_BOT = ("insert into public.chatbots (company_id, name, system_prompt) values (%s, %s, 'Sell.') returning id")


@pytest.fixture(scope="module")
def url(citus_cluster: CitusCluster, citus_migrated: str) -> Iterator[str]:
    """A copy of the session's migrated distributed database, the read data set loaded."""
    with copy_of(citus_cluster, citus_migrated) as db:
        reads.seed(db)
        yield db


def request(url: str, sub: str, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
    """One request (one transaction) of member `sub`, rolled back afterwards (the data set
    stays as seeded for the plans)."""
    out: list[list[tuple[Any, ...]]] = []
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction(force_rollback=True), \
            citus_request(conn, {"sub": sub, "role": "authenticated"}) as r:
        for sql, params in statements:
            cur = r.execute(sql, params)
            out.append(cur.fetchall() if cur.description else [])
    return out


def test_a_member_writes_then_reads_and_updates_the_same_company_in_one_request(url: str) -> None:
    # Failure 8: the chatbot helpers evaluated on the coordinator for an UPDATE (Citus
    # evaluates a modification's functions there, its policies included) read chatbots as
    # the definer, over the owner's connection, after the member wrote the company's
    # placements over its own: 25001. They now read as the caller there.
    out = request(url, reads.OWNER, [
        (NEW_BOT, (C, "Sales")),
        ("update public.chatbots set name = 'Sales 2' where company_id = %s and name = 'Sales'", (C,)),
        ("update public.conversations set status = 'waiting_human' where company_id = %s and end_user_id = 'visitor-1'",
         (C,)),
        ("select count(*) from public.conversations where company_id = %s and status = 'waiting_human'", (C,)),
        ("insert into public.documents (company_id, title, mime_type, storage_path) "
         "values (%s, 'Prices', 'text/plain', 'a/prices.txt')", (C,)),
        ("select id from public.chatbots where company_id = %s and name = 'Sales 2'", (C,)),
        ("select count(*) from public.documents where company_id = %s and title = 'Prices'", (C,)),
    ])
    assert out[3] == [(1,)]
    assert out[5] == [(out[0][0][0],)]
    assert out[6] == [(1,)]


def test_an_operador_writes_then_updates_a_conversation_of_its_chatbot_in_one_request(url: str) -> None:
    # The operador's policies call get_assigned_chatbot_ids (conversations.update_visible's
    # check) after its own write in the transaction.
    out = request(url, reads.OPERADOR, [
        ("update public.conversations set status = 'waiting_human' where company_id = %s and end_user_id = 'visitor-4'",
         (C,)),
        ("update public.conversations set status = 'active' where company_id = %s and end_user_id = 'visitor-4' "
         "returning chatbot_id", (C,)),
        ("update public.conversations set status = 'waiting_human' where company_id = %s and end_user_id = 'visitor-1' "
         "returning id", (C,)),
        ("select private.get_assigned_chatbot_ids()", ()),
    ])
    assert [str(r[0]) for r in out[1]] == ["00000000-0000-4000-b000-000000000001"]
    assert out[2] == []  # visitor-1 talks to bot 2: not the operador's
    assert [str(b) for b in out[3][0][0]] == ["00000000-0000-4000-b000-000000000001"]


def test_a_member_writes_then_calls_an_invoker_rpc_in_one_request(url: str) -> None:
    # An RPC that runs as its caller (create_chatbot_from_template) after a direct write.
    out = request(url, reads.OWNER, [
        (NEW_BOT, (C, "Support")),
        ("select public.create_chatbot_from_template((select min(code) from public.chatbot_templates), 'From preset')",
         ()),
        ("select count(*) from public.chatbots where company_id = %s", (C,)),
    ])
    assert out[2] == [(6,)]


def test_the_helpers_read_the_same_rows_as_the_caller_and_as_the_owner(url: str) -> None:
    # Called directly on the coordinator the helpers read as the caller; inside a shard
    # statement as the owner (the policy of a keyed read, evaluated on the worker). Both
    # give every chatbot to the owner and the assigned one to the operador.
    everything = sorted(f"00000000-0000-4000-b000-00000000000{b}" for b in range(1, 5))
    for sub, expected in ((reads.OWNER, everything), (reads.OPERADOR, everything[:1])):
        direct = request(url, sub, [("select private.get_visible_chatbot_ids()", ())])[0][0][0]
        assert [str(b) for b in direct] == expected
        in_shard = request(url, sub, [("select distinct chatbot_id from public.conversations "
                                       "where company_id = %s order by 1", (C,))])[0]
        assert [str(r[0]) for r in in_shard] == expected


def test_a_membership_rpc_and_a_members_direct_write_of_one_company_take_separate_requests(url: str) -> None:
    # The rule that stays (docs/scale-out.md, "Definer RPCs on Citus"): the membership RPCs
    # write the reference table private.memberships, which a delegated call cannot (Citus
    # refuses remote work inside a forced delegation in a transaction block), so they run on
    # the coordinator as their owner, over its connections, and meet a direct write of the
    # member to the company in the same request with 25001, before it or after it. Reads
    # before them are fine. (The delegated RPCs mix: tests/test_citus_cluster_requests.py.)
    operador = "select id from public.users where company_id = %s and auth_user_id = %s"
    target = request(url, reads.OWNER, [(operador, (C, reads.OPERADOR))])[0][0][0]
    rpc = ("select public.set_member_active(%s, true)", (target,))
    request(url, reads.OWNER, [("select count(*) from public.users where company_id = %s", (C,)), rpc])
    for statements in ([(NEW_BOT, (C, "Before")), rpc], [rpc, (NEW_BOT, (C, "After"))]):
        with pytest.raises(psycopg.Error) as refused:
            request(url, reads.OWNER, statements)
        assert refused.value.sqlstate == "25001"


@pytest.mark.parametrize("query", reads.HOT_QUERIES, ids=[q.name for q in reads.HOT_QUERIES])
def test_every_keyed_hot_read_under_rls_is_routed_to_one_shard(url: str, query: reads.HotQuery) -> None:
    text = reads.plan(url, query)
    assert "Task Count: 1" in text, text


@pytest.mark.parametrize("query", reads.HOT_QUERIES, ids=[q.name for q in reads.HOT_QUERIES])
def test_the_policy_helpers_of_a_hot_read_run_once_per_statement_as_initplans(url: str, query: reads.HotQuery) -> None:
    # Citus refuses the (select f()) InitPlan in a policy of a distributed table, but not on
    # its shards: seeds/3995 writes every placement's policies so (private.citus_shard_policies).
    # In the worker's plan, as the member runs it, each helper is an InitPlan: no call in a
    # per-row Filter, none in an Index Cond (evaluated again at planning for the estimate).
    text = reads.plan(url, query, analyze=True)
    assert "Task Count: 1" in text, text
    assert "InitPlan" in text, text
    assert reads.per_row_helpers(text, query.helpers_once) == [], text
    conditions = [line for line in text.splitlines()
                  if line.strip().startswith(("Index Cond:", "Filter:", "One-Time Filter:"))]
    assert [line for line in conditions if "private." in line] == [], text


# Every policy condition of the shards (and the reference tables' placements) on each node:
# how many helper calls it holds, and how many of them are not wrapped in (select ...).
SHARD_POLICY_CALLS = """
with shard_policy as (
  select coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' '
         || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '') as cond
    from pg_catalog.pg_dist_shard s
    join pg_catalog.pg_policy p
      on p.polrelid = pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid, false)))
select coalesce(sum((select count(*) from pg_catalog.regexp_matches(c.cond, %(call)s, 'g'))), 0) || ' ' ||
       coalesce(sum((select count(*) from pg_catalog.regexp_matches(c.cond, %(bare)s, 'g'))), 0)
  from shard_policy c
""".replace("%(call)s", "'(public|private|auth)\\.[a-z_]+\\(\\)'").replace(
    "%(bare)s", "'(?<!SELECT )(public|private|auth)\\.[a-z_]+\\(\\)'")


def shard_policy_calls(url: str) -> dict[int, tuple[int, int]]:
    """Per node (its id): helper calls in the policies of the shards there, and how many are bare."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("select nodeid, success, result from pg_catalog.run_command_on_all_nodes(%s)",
                            (SHARD_POLICY_CALLS,)).fetchall()
    assert all(ok for _, ok, _ in rows), rows
    return {port: (int(result.split()[0]), int(result.split()[1])) for port, _, result in rows}


def test_every_placement_calls_the_policy_helpers_wrapped_in_select_after_migrate(url: str) -> None:
    calls = shard_policy_calls(url)
    assert len(calls) == 3 and all(total > 0 for total, _ in calls.values()), calls
    assert [bare for _, bare in calls.values()] == [0, 0, 0], calls


def test_the_shard_policies_step_is_idempotent_and_undone_by_its_bare_form(url: str) -> None:
    # After a shard move or a policy migration a DBA runs it again (docs/scale-out.md): it
    # alters only the placements not in the rewritten form (seeds/4500), none after migrate;
    # its rollback (p_initplan false) puts the tables' own bare text back on every placement.
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute("select private.citus_shard_policies()").fetchone()
        assert tables == (0,)
        assert all(bare == 0 for _, bare in shard_policy_calls(url).values())
        try:
            conn.execute("select private.citus_shard_policies(false)")
            assert all(bare == total > 0 for total, bare in shard_policy_calls(url).values())
        finally:
            tables = conn.execute("select private.citus_shard_policies()").fetchone()
        assert tables is not None and tables[0] > 20  # every table whose policies call a helper
    assert all(bare == 0 for _, bare in shard_policy_calls(url).values())


def test_the_helpers_read_the_local_placement_only_inside_a_shard_statement(url: str) -> None:
    # private.local_placement names the company's shard where a shard statement runs (the
    # worker holding it, a session Citus opened) and nothing on the coordinator, where the
    # helpers read the tables through Citus.
    out = request(url, reads.OWNER, [
        ("select private.local_placement('public.chatbots', %s)", (C,)),
        ("select private.local_placement('public.chatbots', company_id) from public.chatbots where company_id = %s "
         "limit 1", (C,)),
    ])
    assert out[0] == [(None,)]
    [(shard,)] = out[1]
    assert shard.startswith("public.chatbots_"), out


# The shards functions/4800's readers name: the membership copy's one shard and every shard of
# the two chatbot tables (pg_dist_shard, the same on every node).
READ_SHARDS = """
select pg_catalog.shard_name(s.logicalrelid, s.shardid, false), s.logicalrelid::text
  from pg_catalog.pg_dist_shard s
 where s.logicalrelid in ('private.memberships'::regclass, 'public.chatbots'::regclass,
                          'public.chatbot_operators'::regclass)
 order by s.shardid
"""
READERS = ("private.membership_in_placement(text,uuid)", "private.chatbot_ids_in_placement(text,uuid,uuid)")
SHARD_OF = ("select pg_catalog.shard_name(%s::regclass, "
            "pg_catalog.get_shard_id_for_distribution_column(%s::regclass, %s::uuid), false)")


def _value(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the one row `sql` returns."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def test_the_placement_readers_name_every_shard_of_the_membership_and_chatbot_tables(url: str) -> None:
    # functions/4800: one static query per shard (its plan kept by the session) instead of a
    # dynamic query planned at every call; written again, they name the same shards.
    with psycopg.connect(url, autocommit=True) as conn:
        shards = conn.execute(READ_SHARDS).fetchall()
        named = _value(conn, "select private.citus_placement_readers()")
        texts = {sig: _value(conn, "select prosrc from pg_catalog.pg_proc where oid = %s::regprocedure", (sig,))
                 for sig in READERS}
        runners = {sig: _value(
            conn, "select pg_catalog.array_agg(r.rolname::text order by r.rolname) from pg_catalog.pg_roles r "
            "where r.rolname in ('anon', 'authenticated', 'service_role') "
            "and pg_catalog.has_function_privilege(r.oid, %s::regprocedure, 'execute')", (sig,)) for sig in READERS}
    assert named == len(shards) and len(shards) == 1 + 2 * TEST_SHARD_COUNT, shards
    for shard, table in shards:
        reader = READERS[0] if table == "private.memberships" else READERS[1]
        assert f"from {shard} " in texts[reader], (shard, texts[reader])
    assert runners == {sig: None for sig in READERS}  # the owner only: the helpers call them as it


def _quoted(shard: str) -> str:
    """The same placement named another way: `public."chatbots_102008"`."""
    return shard.replace(".", '."', 1) + '"'


def test_a_placement_the_readers_do_not_name_is_read_with_the_same_rows(url: str, citus_cluster: CitusCluster) -> None:
    # A shard written after the readers (a split) falls to the dynamic query: the same
    # placement named another way (quoted) takes that branch and reads the same rows.
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        membership = _value(conn, SHARD_OF, ("private.memberships", "private.memberships", None))
        chatbots, operators = (_value(conn, SHARD_OF, (t, t, C))
                               for t in ("public.chatbots", "public.chatbot_operators"))
        operador_id = _value(conn, "select id from public.users where company_id = %s and auth_user_id = %s",
                             (C, reads.OPERADOR))
    answers = []
    for node in ("worker1", "worker2"):
        with psycopg.connect(citus_cluster.url(node, database), autocommit=True) as conn:
            if _value(conn, "select pg_catalog.to_regclass(%s)", (chatbots,)) is None:
                continue
            for name in (str, _quoted):
                answers.append([
                    conn.execute("select (private.membership_in_placement(%s, %s)).*",
                                 (name(membership), reads.OWNER)).fetchone(),
                    _value(conn, "select private.chatbot_ids_in_placement(%s, %s, null)", (name(chatbots), C)),
                    _value(conn, "select private.chatbot_ids_in_placement(%s, %s, %s)",
                           (name(operators), C, operador_id))])
    assert len(answers) == 2 and answers[0] == answers[1], answers
    (company, _user, role), visible, assigned = answers[0]
    assert (str(company), role) == (C, "owner")
    assert [str(b) for b in visible] == sorted(f"00000000-0000-4000-b000-00000000000{b}" for b in range(1, 5))
    assert [str(b) for b in assigned] == ["00000000-0000-4000-b000-000000000001"]


STALE_MEMBERSHIP_READER = """
create or replace function private.membership_in_placement(p_placement text, p_uid uuid,
    out company_id uuid, out user_id uuid, out role public.user_role)
  language plpgsql stable security invoker
as $body$
begin
  execute pg_catalog.format('select m.company_id, m.id, m.role from %s m where m.auth_user_id = $1 and m.is_active',
                            p_placement)
     into company_id, user_id, role using p_uid;
end
$body$
"""


def test_doctor_names_a_shard_the_readers_do_not_and_the_rewrite_names_it_again(url: str) -> None:
    # What a split leaves (shards written after the readers), shown with a reader that names
    # no shard: doctor's citus.placement_readers warns with the rewrite as fix, the keyed
    # read under RLS still reads its rows (the dynamic query), the rewrite clears it.
    transcript = next(q for q in reads.HOT_QUERIES if q.name == "transcript")
    with psycopg.connect(url, autocommit=True) as conn:
        assert list(placement_reader_findings(conn)) == []
        shard = _value(conn, SHARD_OF, ("private.memberships", "private.memberships", None))
        try:
            conn.execute(STALE_MEMBERSHIP_READER)
            stale = list(placement_reader_findings(conn))
            assert [(f.level, f.check, f.object, f.hint) for f in stale] == [
                ("warning", READERS_CHECK, shard, f"On the coordinator: {READERS_REWRITE}")], stale
            with psycopg.connect(url, autocommit=True) as member_conn, \
                    citus_request(member_conn, {"sub": transcript.member, "role": "authenticated"}) as r:
                assert len(r.execute(transcript.sql, reads.PARAMS).fetchall()) == 5
        finally:
            conn.execute(READERS_REWRITE)
        assert list(placement_reader_findings(conn)) == []
