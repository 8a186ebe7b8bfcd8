"""`neurant-db bench`: RLS cost measured side by side, in one run.

Loads a multi-tenant data set (triggers off: this measures reads; then vacuumed, as
autovacuum would, and the members' visible chatbots filled in), then runs each
hot query several ways on the same server, interleaved so drift hits all alike:
  baseline  superuser, no RLS, explicit `company_id = $1`   (the reference)
  rls+key   authenticated user under RLS, still sending `company_id = $1`
  rls       authenticated user under RLS, no explicit tenant filter
and, on one server, the policy shapes people copy today (PEER_SHAPES), built on copies of
the hot tables in schema bench_peers (same rows, same indexes; the real schema is not
touched), each with and without the key, plus `copy`, the baseline on the copies (with
--candidates also CANDIDATE_SHAPES, candidate shapes of our own select policy, side by side
with ours on the copies, `ours_copy`: a policy change measured before it is made). Every
variant is timed under a generic and under a custom plan (plan_cache_mode forced), and the
faster of the two counts: no ratio is made by a baseline held to its slower plan.
It prints each variant's time (the lower quartile of its blocks) and the ratios to
baseline. All variants run on one
connection (role switched between blocks of queries, blocks shuffled per
round): on a small machine, comparing two connections mostly measures which
CPU their backends landed on. The goals (docs/performance.md): rls+key <= 1.10x
baseline; ours the fastest fresh policy shape on every hot query, within 0.05x of the
stale JWT claim, none above 1.25x (issue 21).

On a Citus cluster (profile citus, --database-url of the coordinator) the data set is
loaded into a throwaway database distributed over every node: migrated up to the
distribution step, loaded locally, then distributed by that step (the path of
docs/scale-out.md, "Moving an existing database"); each block of queries runs in one
transaction opened with the documented request sequence (citus_request.py: session
settings do not reach the workers), the baseline's blocks in a transaction too. There the
peer shapes are not built and the plan cache is left to the server (plan_cache_mode auto).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

from . import bench_tenant, citus_testdb
from . import bench_writes as bw
from .citus_request import request_statements
from .database import DatabaseTarget, with_database
from .errors import NeurantError
from .migrate import migrate
from .testdb import TestDatabase, provision, test_settings

LOAD_SQL = """
set session_replication_role = replica;
insert into auth.users (id, email)
select ('00000000-0000-4000-8000-' || lpad(to_hex(c * 10 + r), 12, '0'))::uuid,
       format('u%%s_%%s@bench.test', c, r)
from generate_series(1, %(companies)s) c, generate_series(1, 4) r;
insert into public.companies (id, name, subscription_plan)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid, 'bench company ' || c, 'enterprise'
from generate_series(1, %(companies)s) c;
insert into public.users (company_id, id, auth_user_id, email, role)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid,
       ('00000000-0000-4000-a000-' || lpad(to_hex(c * 10 + r), 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad(to_hex(c * 10 + r), 12, '0'))::uuid,
       format('u%%s_%%s@bench.test', c, r),
       (array['owner', 'administrador', 'supervisor', 'operador'])[r]::public.user_role
from generate_series(1, %(companies)s) c, generate_series(1, 4) r;
insert into public.chatbots (company_id, id, name, system_prompt)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid,
       ('00000000-0000-4000-b000-' || lpad(to_hex(c * 10 + b), 12, '0'))::uuid,
       'bot ' || b, 'You are helpful.'
from generate_series(1, %(companies)s) c, generate_series(1, 4) b;
insert into public.chatbot_operators (company_id, chatbot_id, user_id)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid,
       ('00000000-0000-4000-b000-' || lpad(to_hex(c * 10 + 1), 12, '0'))::uuid,
       ('00000000-0000-4000-a000-' || lpad(to_hex(c * 10 + 4), 12, '0'))::uuid
from generate_series(1, %(companies)s) c;
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel, status,
                                  last_message_at, closed_at, created_at)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid,
       ('00000000-0000-4000-c000-' || lpad(to_hex(c * 100000 + v), 12, '0'))::uuid,
       ('00000000-0000-4000-b000-' || lpad(to_hex(c * 10 + 1 + v %% 4), 12, '0'))::uuid,
       'end-user-' || v, 'web',
       (case when v %% 5 = 0 then 'closed' else 'active' end)::public.conversation_status,
       now() - (v || ' minutes')::interval,
       case when v %% 5 = 0 then now() end,
       now() - (v || ' minutes')::interval
from generate_series(1, %(companies)s) c, generate_series(1, %(conversations)s) v;
insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content, created_at)
select cv.company_id, cv.id, cv.chatbot_id,
       (case when m %% 2 = 0 then 'bot' else 'end_user' end)::public.message_sender_type,
       'message ' || m, cv.created_at + (m || ' seconds')::interval
from public.conversations cv, generate_series(1, %(messages)s) m;
set session_replication_role = origin;
-- the members' visible chatbots (private.chatbot_visibility), which the triggers skipped
-- above would have written; guarded so the bench also runs against older schemas
do $$
begin
  if pg_catalog.to_regprocedure('private.refresh_chatbot_visibility(uuid, uuid)') is not null then
    perform private.refresh_chatbot_visibility(c.id, null) from public.companies c;
  end if;
end
$$;
"""

COMPANY = "00000000-0000-4000-9000-{:012x}"
USER = "00000000-0000-4000-8000-{:012x}"  # auth.users ids
ASSIGNED_BOT = "00000000-0000-4000-b000-{:012x}"
CONVERSATION = "00000000-0000-4000-c000-{:012x}"


@dataclass(frozen=True)
class Query:
    name: str
    identity: int  # 1 owner, 4 operador
    baseline: str  # run without RLS; %(company)s etc. bound
    rls_keyed: str
    rls_only: str
    # the peer shapes without the key (on the copies): they isolate tenants only, so the
    # operador's chatbot filter is sent by the query, as an application on them would
    peer_only: str = ""


QUERIES = [
    Query("inbox: 50 latest conversations", 1,
          "select id, status, last_message_at from public.conversations where company_id = %(company)s "
          "order by last_message_at desc limit 50",
          "select id, status, last_message_at from public.conversations where company_id = %(company)s "
          "order by last_message_at desc limit 50",
          "select id, status, last_message_at from public.conversations "
          "order by last_message_at desc limit 50"),
    Query("thread: 100 messages of a conversation", 1,
          "select id, sender_type, content, created_at from public.messages where company_id = %(company)s "
          "and conversation_id = %(conversation)s order by created_at desc limit 100",
          "select id, sender_type, content, created_at from public.messages where company_id = %(company)s "
          "and conversation_id = %(conversation)s order by created_at desc limit 100",
          "select id, sender_type, content, created_at from public.messages "
          "where conversation_id = %(conversation)s order by created_at desc limit 100"),
    Query("count open conversations", 1,
          "select count(*) from public.conversations where company_id = %(company)s and status <> 'closed'",
          "select count(*) from public.conversations where company_id = %(company)s and status <> 'closed'",
          "select count(*) from public.conversations where status <> 'closed'"),
    Query("operador inbox (assigned chatbots only)", 4,
          "select id, status, last_message_at from public.conversations where company_id = %(company)s "
          "and chatbot_id = any(%(assigned)s) order by last_message_at desc limit 50",
          "select id, status, last_message_at from public.conversations where company_id = %(company)s "
          "order by last_message_at desc limit 50",
          "select id, status, last_message_at from public.conversations "
          "order by last_message_at desc limit 50",
          "select id, status, last_message_at from public.conversations where chatbot_id = any(%(assigned)s) "
          "order by last_message_at desc limit 50"),
    Query("messages this month (usage)", 1,
          "select count(*) from public.messages where company_id = %(company)s "
          "and created_at >= date_trunc('month', now())",
          "select count(*) from public.messages where company_id = %(company)s "
          "and created_at >= date_trunc('month', now())",
          "select count(*) from public.messages where created_at >= date_trunc('month', now())"),
]


def load(conn: psycopg.Connection, companies: int, conversations: int, messages: int) -> None:
    conn.execute(LOAD_SQL % {"companies": companies, "conversations": conversations,
                             "messages": messages})
    # Vacuum, not only analyze: a live table is autovacuumed, so its visibility map is
    # set and index-only scans skip the heap. Right after a bulk load it is not, and
    # every variant would pay heap fetches no production read pays.
    conn.execute("vacuum (analyze)")


PEER_SCHEMA = "bench_peers"
HOT_TABLES = ("conversations", "messages")


@dataclass(frozen=True)
class PeerShape:
    """A tenant policy shape people copy today, written here from its published form (not
    copied): `using` is its USING clause on a copy of a hot table, for role `role`."""
    key: str  # variant label; `<key>+key` is the same shape with the explicit key sent
    title: str
    fresh: bool  # False: trusts a value fixed when the token was issued
    using: str
    # a candidate shape of OUR policy (--candidates): it scopes the operador to its chatbots
    # as ours does, so its query without the key is ours (no chatbot filter sent), and it is
    # compared with ours on the copies (`ours_copy`), not counted among the peers
    candidate: bool = False

    @property
    def role(self) -> str:
        return f"neurant_bench_{self.key}"


PEER_SHAPES = [
    PeerShape("supabase", "Supabase's RLS guide: company_id in (select company_id from <membership> "
              "where auth_user_id = (select auth.uid()))", True,
              f"company_id in (select m.company_id from {PEER_SCHEMA}.memberships m "
              "where m.auth_user_id = (select auth.uid()))"),
    PeerShape("basejump", "basejump: has_role_on_account(company_id), called as it is", True,
              f"{PEER_SCHEMA}.has_role_on_account(company_id)"),
    PeerShape("basejump_select", "basejump's helper wrapped: (select has_role_on_account(company_id))", True,
              f"(select {PEER_SCHEMA}.has_role_on_account(company_id))"),
    PeerShape("tenant_array", "array of tenants: company_id = any (array(select company_id from <membership> "
              "where auth_user_id = (select auth.uid())))", True,
              f"company_id = any (array(select m.company_id from {PEER_SCHEMA}.memberships m "
              "where m.auth_user_id = (select auth.uid())))"),
    PeerShape("jwt_claim", "stale JWT claim: company_id = ((select auth.jwt()) ->> 'company_id')::uuid "
              "(the speed reference: no lookup, not fresh)", False,
              "company_id = ((select auth.jwt()) ->> 'company_id')::uuid"),
]


# Candidate shapes of our own select policy (issue 21, item 4; `neurant-db bench
# --candidates`): on the same copies, side by side with ours there (`ours_copy`, the
# released shape), so a change of the real policies is measured before it is made. Each
# keeps the operador to its chatbots (the rows of ours); helpers they need are created in
# bench_peers (CANDIDATES_SQL), security definer as ours are.
CANDIDATE_SHAPES = [
    PeerShape("ours_copy", "ours, released: company_id = (select private.get_user_company_id()) and "
              "chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])", True,
              "company_id = (select private.get_user_company_id()) "
              "and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])", candidate=True),
    PeerShape("ours_flag", "company_id = (select get_user_company_id()) and ((select sees_every_chatbot()) "
              "or chatbot_id = any ((select get_visible_chatbot_ids())))", True,
              "company_id = (select private.get_user_company_id()) "
              f"and ((select {PEER_SCHEMA}.sees_every_chatbot()) "
              "or chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[]))", candidate=True),
    PeerShape("ours_null_all", "company_id = (select get_user_company_id()) and "
              "coalesce(chatbot_id = any ((select visible_or_null())), true) (null: every chatbot)", True,
              "company_id = (select private.get_user_company_id()) "
              f"and coalesce(chatbot_id = any ((select {PEER_SCHEMA}.visible_or_null())::uuid[]), true)",
              candidate=True),
    PeerShape("ours_vis", "both helpers read the caller's private.chatbot_visibility row (company from it)", True,
              f"company_id = (select {PEER_SCHEMA}.visible_company_id()) "
              "and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])", candidate=True),
    PeerShape("ours_view", "both lookups inline through a view of the caller's own chatbot_visibility row "
              "(security_invoker off: no function call, no security definer)", True,
              f"company_id = (select v.company_id from {PEER_SCHEMA}.my_visibility v) "
              f"and chatbot_id = any ((select v.chatbot_ids from {PEER_SCHEMA}.my_visibility v)::uuid[])",
              candidate=True),
    PeerShape("ours_inline", "both lookups inline, read under RLS: the caller may select its own "
              "private.chatbot_visibility row (auth_user_id = (select auth.uid())), no helper called", True,
              "company_id = (select v.company_id from private.chatbot_visibility v "
              "where v.auth_user_id = (select auth.uid())) "
              "and chatbot_id = any ((select v.chatbot_ids from private.chatbot_visibility v "
              "where v.auth_user_id = (select auth.uid()))::uuid[])", candidate=True),
    PeerShape("ours_plpgsql", "ours with both helpers in plpgsql (plans cached per session)", True,
              f"company_id = (select {PEER_SCHEMA}.company_plpgsql()) "
              f"and chatbot_id = any ((select {PEER_SCHEMA}.visible_plpgsql())::uuid[])", candidate=True),
]

CANDIDATES_SQL = f"""
create function {PEER_SCHEMA}.sees_every_chatbot() returns boolean
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select u.role in ('owner', 'administrador', 'supervisor') from public.users u
                    where u.auth_user_id = auth.uid() and u.is_active), false)
$$;
comment on function {PEER_SCHEMA}.sees_every_chatbot() is
  'bench candidate: the caller sees every chatbot of its company.';
create function {PEER_SCHEMA}.visible_or_null() returns uuid[]
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select case when u.role in ('owner', 'administrador', 'supervisor') then null
              else coalesce(v.chatbot_ids, '{{}}'::uuid[]) end
    from (select auth.uid() as uid) c
    left join private.chatbot_visibility v on v.auth_user_id = c.uid
    left join public.users u on u.company_id = v.company_id and u.id = v.user_id
$$;
comment on function {PEER_SCHEMA}.visible_or_null() is
  'bench candidate: the caller''s visible chatbots, null for every chatbot.';
create function {PEER_SCHEMA}.visible_company_id() returns uuid
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select v.company_id from private.chatbot_visibility v where v.auth_user_id = auth.uid()
$$;
comment on function {PEER_SCHEMA}.visible_company_id() is
  'bench candidate: the caller''s company from its visibility row.';
create function {PEER_SCHEMA}.company_plpgsql() returns uuid
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return (select u.company_id from public.users u where u.auth_user_id = auth.uid() and u.is_active);
end
$$;
comment on function {PEER_SCHEMA}.company_plpgsql() is 'bench candidate: get_user_company_id in plpgsql.';
create function {PEER_SCHEMA}.visible_plpgsql() returns uuid[]
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return coalesce((select v.chatbot_ids from private.chatbot_visibility v where v.auth_user_id = auth.uid()),
                  '{{}}'::uuid[]);
end
$$;
comment on function {PEER_SCHEMA}.visible_plpgsql() is 'bench candidate: get_visible_chatbot_ids in plpgsql.';
create view {PEER_SCHEMA}.my_visibility as
  select v.company_id, v.chatbot_ids from private.chatbot_visibility v where v.auth_user_id = auth.uid();
comment on view {PEER_SCHEMA}.my_visibility is
  'bench candidate: the caller''s own visibility row, read as the view''s owner.';
"""
CANDIDATE_FUNCTIONS = ("private.get_user_company_id()", "private.get_visible_chatbot_ids()",
                       f"{PEER_SCHEMA}.sees_every_chatbot()", f"{PEER_SCHEMA}.visible_or_null()",
                       f"{PEER_SCHEMA}.visible_company_id()", f"{PEER_SCHEMA}.company_plpgsql()",
                       f"{PEER_SCHEMA}.visible_plpgsql()")
ALL_SHAPES = (*PEER_SHAPES, *CANDIDATE_SHAPES)

PEERS_SQL = f"""
create schema {PEER_SCHEMA};
comment on schema {PEER_SCHEMA} is
  'neurant-db bench: copies of the hot tables under the policy shapes people copy today.';
-- the membership table those shapes look the caller up in: the active members, keyed as
-- their guides advise (the caller's identity first); no RLS of its own (their best case)
create table {PEER_SCHEMA}.memberships (
  auth_user_id uuid not null,
  company_id uuid not null,
  role public.user_role not null,
  primary key (auth_user_id, company_id)
);
comment on table {PEER_SCHEMA}.memberships is 'bench: who belongs to which company, for the peer shapes.';
insert into {PEER_SCHEMA}.memberships (auth_user_id, company_id, role)
select auth_user_id, company_id, role from public.users where is_active and auth_user_id is not null;
-- basejump's shape: a security definer function per row, true when the caller belongs to the company
create function {PEER_SCHEMA}.has_role_on_account(p_company_id uuid) returns boolean
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select exists (select 1 from {PEER_SCHEMA}.memberships m
                  where m.auth_user_id = auth.uid() and m.company_id = p_company_id)
$$;
comment on function {PEER_SCHEMA}.has_role_on_account(uuid) is 'bench: basejump''s shape of a membership test.';
revoke execute on function {PEER_SCHEMA}.has_role_on_account(uuid) from public;
"""


def _copy_columns(conn: psycopg.Connection, table: str) -> str:
    rows = conn.execute("select a.attname from pg_catalog.pg_attribute a where a.attrelid = %s::regclass "
                        "and a.attnum > 0 and not a.attisdropped and a.attgenerated = '' order by a.attnum",
                        (f"public.{table}",)).fetchall()
    return ", ".join(psycopg.sql.Identifier(r[0]).as_string(conn) for r in rows)


def build_peers(conn: psycopg.Connection, shapes: tuple[PeerShape, ...] = tuple(PEER_SHAPES)) -> None:
    """Schema bench_peers: a copy of each hot table (`like ... including all`: the same
    columns, checks and indexes; the same rows, in the same order), a membership table, and
    per peer shape one role with its select policy on the copies. Nothing of the real
    schema changes; drop_peers removes it all (roles included)."""
    drop_peers(conn)
    conn.execute(PEERS_SQL)
    if any(s.candidate for s in shapes):
        conn.execute(CANDIDATES_SQL)
    for table in HOT_TABLES:
        columns = _copy_columns(conn, table)
        conn.execute(f"create table {PEER_SCHEMA}.{table} (like public.{table} including all)")
        conn.execute(f"insert into {PEER_SCHEMA}.{table} ({columns}) select {columns} from public.{table}")
        conn.execute(f"alter table {PEER_SCHEMA}.{table} enable row level security")
        conn.execute(f"alter table {PEER_SCHEMA}.{table} force row level security")
    for shape in shapes:
        conn.execute(f"""
do $$
begin
  create role {shape.role} nologin;
exception when duplicate_object then null;
end
$$""")
        conn.execute(psycopg.sql.SQL("comment on role {} is {}").format(
            psycopg.sql.Identifier(shape.role),
            psycopg.sql.Literal(f"neurant-db bench (dropped after the run): {shape.title}")))
        conn.execute(f"grant usage on schema {PEER_SCHEMA}, auth to {shape.role}")
        conn.execute(f"grant select on {PEER_SCHEMA}.memberships to {shape.role}")
        conn.execute(f"grant execute on function auth.uid(), auth.jwt(), "
                     f"{PEER_SCHEMA}.has_role_on_account(uuid) to {shape.role}")
        if shape.candidate:
            conn.execute(f"grant usage on schema private to {shape.role}")
            conn.execute(f"grant execute on function {', '.join(CANDIDATE_FUNCTIONS)} to {shape.role}")
            conn.execute(f"grant select on {PEER_SCHEMA}.my_visibility to {shape.role}")
            if shape.key == "ours_inline":  # its own row of the real table (dropped with the role)
                conn.execute(f"grant select on private.chatbot_visibility to {shape.role}")
                conn.execute(f"create policy bench_{shape.key} on private.chatbot_visibility for select "
                             f"to {shape.role} using (auth_user_id = (select auth.uid()))")
        for table in HOT_TABLES:
            conn.execute(f"grant select on {PEER_SCHEMA}.{table} to {shape.role}")
            conn.execute(f"create policy {shape.key} on {PEER_SCHEMA}.{table} for select to {shape.role} "
                         f"using ({shape.using})")
    conn.execute(f"vacuum (analyze) {PEER_SCHEMA}.memberships, "
                 + ", ".join(f"{PEER_SCHEMA}.{t}" for t in HOT_TABLES))


def drop_peers(conn: psycopg.Connection) -> None:
    """Schema bench_peers and the peer shapes' roles gone (a role that holds a grant in another
    database of the server stays)."""
    conn.execute(f"drop schema if exists {PEER_SCHEMA} cascade")
    existing = {r[0] for r in conn.execute("select rolname from pg_catalog.pg_roles where rolname = any(%s)",
                                           ([s.role for s in ALL_SHAPES],))}
    for shape in ALL_SHAPES:
        if shape.role in existing:
            conn.execute(f"drop owned by {shape.role}")  # its grants in this database
            # (granted something in another database of the server: left there)
            with contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
                conn.execute(f"drop role {shape.role}")


def _on_copies(sql: str) -> str:
    for table in HOT_TABLES:
        sql = sql.replace(f"public.{table}", f"{PEER_SCHEMA}.{table}")
    return sql


def _claims(company_no: int, role_no: int) -> dict[str, str]:
    # company_id: only the stale-claim peer shape reads it (ours never trusts a claim's tenant)
    return {"sub": USER.format(company_no * 10 + role_no), "role": "authenticated",
            "company_id": COMPANY.format(company_no)}


def _act_as(conn: psycopg.Connection, company_no: int, role_no: int) -> None:
    claims = json.dumps(_claims(company_no, role_no))
    conn.execute("select set_config('request.jwt.claims', %s, false)", (claims,))


@contextmanager
def _as_variant(conn: psycopg.Connection, role: str | None, claims: dict[str, str],
                distributed: bool) -> Iterator[None]:
    """Run what follows as the variant's role: on one server the role switched on the session
    (the claims set once by _act_as); on a Citus cluster one transaction opened with the
    request sequence (the baseline's too, so both pay for a transaction alike)."""
    if not distributed:
        conn.execute("reset role" if role is None else f"set role {role}")
        yield
        return
    with conn.transaction():
        if role is not None:
            for statement in request_statements(claims, role):
                conn.execute(statement)
        yield


def _tag(sql: str, label: str) -> str:
    """A distinct statement text per variant: psycopg keys its prepared statements by
    text, and a shared statement would share (and distort) the plan cache."""
    return f"/* bench {label} */ {sql}"


# A block of executions stops early once it has run this long (with one timed execution
# at least): a peer shape that calls a function per row reads every row of the table
# without the key (seconds per execution at 2M), and needs no 30 samples to show it.
BLOCK_BUDGET_S = 0.25
# After the first round, a variant slower than this many times the baseline (and than
# SLOW_S) is not measured again: its ratio is from that round (marked in the output).
SLOW_RATIO = 10.0
SLOW_S = 0.01


def _low(times: list[float]) -> float:
    """The lower quartile of a block's times: on a machine shared with other work the upper
    part of a block is time the backend waited for a CPU, which no variant owns; the lower
    quartile is what the statement costs when it runs (the median of a single sample)."""
    if len(times) < 4:
        return statistics.median(times)
    return statistics.quantiles(times, n=4)[0]


def _block(conn: psycopg.Connection, sql: str, params: dict[str, Any], n: int, warmup: int,
           budget: float | None = None) -> tuple[list[float], list[Any]]:
    """n timed executions after `warmup` untimed ones (fewer once `budget` seconds are
    spent, one timed at least); the times and the rows of the last execution."""
    out: list[float] = []
    rows: list[Any] = []
    started = time.perf_counter()
    i = 0
    while len(out) < n:
        start = time.perf_counter()
        rows = conn.execute(sql, params, prepare=True).fetchall()
        elapsed = time.perf_counter() - start
        # (a warm-up that alone takes several budgets is timed: nothing is left to warm)
        if i >= warmup or (budget is not None and elapsed > 4 * budget):
            out.append(elapsed)
        i += 1
        if budget is not None and time.perf_counter() - started > budget:
            if out:
                break
            warmup = min(warmup, i)  # the next execution is timed
    return out, rows


def bench_params(companies: int) -> tuple[int, dict[str, Any]]:
    target = max(1, companies // 2)
    return target, {
        "company": COMPANY.format(target),
        "conversation": CONVERSATION.format(target * 100000 + 4),  # chatbot 1: assigned
        "assigned": [ASSIGNED_BOT.format(target * 10 + 1)],
    }


def _variants(q: Query, peers: bool = False,
              shapes: tuple[PeerShape, ...] = tuple(PEER_SHAPES)) -> list[tuple[str, str | None, str]]:
    """(label, role, tagged statement) of every variant of a hot query: ours (baseline,
    rls+key, rls) and, with `peers`, the baseline on the copies (`copy`) and every peer shape
    with the key (`<shape>+key`, the baseline's text) and without (`<shape>`)."""
    out = [("baseline", None, q.baseline), ("rls+key", "authenticated", q.rls_keyed),
           ("rls", "authenticated", q.rls_only)]
    if peers:
        keyed, only = _on_copies(q.baseline), _on_copies(q.peer_only or q.rls_only)
        out.append(("copy", None, keyed))
        for shape in shapes:
            # a candidate of ours scopes the operador itself: its keyed and unkeyed queries are ours
            out += [(f"{shape.key}+key", shape.role, _on_copies(q.rls_keyed) if shape.candidate else keyed),
                    (shape.key, shape.role, _on_copies(q.rls_only) if shape.candidate else only)]
    return [(label, role, _tag(sql, label)) for label, role, sql in out]


# plan_cache_mode per timed mode: every variant is timed under both forced modes and the
# faster counts ("auto": the server's choice, used on a Citus cluster)
PLAN_MODES = {"generic": "force_generic_plan", "custom": "force_custom_plan", "auto": "auto"}


PARAM_TYPES = {"company": "uuid", "conversation": "uuid", "assigned": "uuid[]"}


def _prepared_text(sql: str) -> str:
    """The variant's statement with the bench's parameters as $1..$3 (all declared)."""
    for i, name in enumerate(PARAM_TYPES, start=1):
        sql = sql.replace(f"%({name})s", f"${i}")
    return sql


def explain(conn: psycopg.Connection, companies: int, *, fmt: str = "text",
            analyze: bool = True, distributed: bool = False, peers: bool = False,
            modes: dict[str, dict[str, str]] | None = None,
            slow: dict[str, list[str]] | None = None,
            shapes: tuple[PeerShape, ...] = tuple(PEER_SHAPES)) -> dict[str, dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every hot query, every variant (`peers`: the peer
    shapes' too, build_peers first), as the bench runs it: a prepared statement under the
    plan mode the timed loop found fastest for it (`modes`: {query: {variant: generic or
    custom}}, from the results' plan_cache), explained after the executions that let the
    plan cache settle (`slow`: {query: [variant]}, explained at their first execution).
    {query: {variant: plan text or JSON}}."""
    target, params = bench_params(companies)
    out: dict[str, dict[str, Any]] = {}
    opts = f"analyze, buffers, format {fmt}" if analyze else f"format {fmt}"
    types = ", ".join(PARAM_TYPES.values())
    args = ", ".join(psycopg.sql.Literal(params[name]).as_string(conn) + f"::{t}"
                     for name, t in PARAM_TYPES.items())
    for q in QUERIES:
        _act_as(conn, target, q.identity)
        out[q.name] = {}
        for label, role, sql in _variants(q, peers, shapes):
            mode = (modes or {}).get(q.name, {}).get(label, "auto")
            conn.execute(f"set plan_cache_mode = {PLAN_MODES.get(mode, 'auto')}")
            with _as_variant(conn, role, _claims(target, q.identity), distributed):
                conn.execute(f"prepare bench_plan ({types}) as {_prepared_text(sql)}")
                # auto: the plan cache decides generic vs custom after 5 executions; a forced
                # mode holds from the first (one execution warms the buffers, none for a
                # variant the bench found too slow to repeat)
                warm = 6 if mode == "auto" else 0 if label in (slow or {}).get(q.name, ()) else 1
                for _ in range(warm):
                    conn.execute(f"execute bench_plan ({args})").fetchall()
            # (on a cluster in a transaction of its own: EXPLAIN ANALYZE of a multi-shard query
            # cannot follow the coordinator's local reads of reference tables in one)
            with _as_variant(conn, role, _claims(target, q.identity), distributed):
                rows = conn.execute(f"explain ({opts}) execute bench_plan ({args})").fetchall()
            conn.execute("deallocate bench_plan")
            out[q.name][label] = ("\n".join(r[0] for r in rows) if fmt == "text" else rows[0][0])
        conn.execute("reset role")
        conn.execute("reset plan_cache_mode")
    return out


def _as_sent(sql: str) -> str:
    """The statement text psycopg sends for a %(name)s query: $1, $2 ... in order of
    first appearance (how pg_prepared_statements shows it)."""
    names: list[str] = []
    for m in re.finditer(r"%\((\w+)\)s", sql):
        if m.group(1) not in names:
            names.append(m.group(1))
    for i, name in enumerate(names, start=1):
        sql = sql.replace(f"%({name})s", f"${i}")
    return sql


def _plan_cache(conn: psycopg.Connection, variants: list[tuple[str, str | None, str]]) -> dict[str, str]:
    """How the server ran each variant's prepared statement: 'generic' (planned once),
    'custom' (planned again at every execution: the planner found the generic plan
    costlier) or a mix; a ratio is read knowing whether planning is inside it."""
    out = {}
    for label, _role, sql in variants:
        hit = conn.execute("select generic_plans, custom_plans from pg_catalog.pg_prepared_statements "
                           "where statement = %s", (_as_sent(sql),)).fetchone()
        if hit is None:
            out[label] = "unknown"
        elif hit[0] and hit[1] <= 5:  # the first five executions are always custom
            out[label] = "generic"
        elif not hit[0]:
            out[label] = "custom"
        else:
            out[label] = f"{hit[0]} generic, {hit[1]} custom"
    return out


def _pin_cpus(conn: psycopg.Connection) -> tuple[str, Callable[[], None]]:
    """Pin this client to one CPU and the connection's backend to another, when both run
    on this machine and the OS lets us: otherwise the scheduler moves them between
    shared and separate CPUs from run to run, and the same plan measured 38 us in one
    run and 111 us in another (issue 11), moving every ratio with it. Returns what was
    done, and how to undo the client's pinning."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return "not pinned (fewer than 2 CPUs)", lambda: None
    row = conn.execute("select pg_backend_pid(), current_setting('data_directory', true)").fetchone()
    backend, data_dir = (int(row[0]), row[1]) if row else (0, None)
    # the pid is this server's backend only if that process runs in the server's data
    # directory (a backend's working directory); on a remote server the same number may
    # be an unrelated local process, which must not be touched
    try:
        local = data_dir is not None and os.path.samefile(f"/proc/{backend}/cwd", data_dir)
    except OSError:
        local = False
    if not local:
        return "not pinned (the server's backend is not a process of this machine)", lambda: None
    try:
        os.sched_setaffinity(backend, {cpus[-1]})
    except OSError as e:  # a backend of another user
        return f"not pinned (backend: {e.strerror or e})", lambda: None
    before = set(cpus)
    os.sched_setaffinity(0, {cpus[0]})
    return (f"client on CPU {cpus[0]}, backend on CPU {cpus[-1]}",
            lambda: os.sched_setaffinity(0, before))


def run(database: DatabaseTarget, *, companies: int, conversations: int, messages: int, iterations: int,
        echo: Callable[[str], None], rounds: int = 10, seed: int = 7, load_data: bool = True,
        explain_into: dict[str, Any] | None = None, distributed: bool = False,
        peers: bool = True, candidates: bool = False) -> list[dict[str, Any]]:
    """One connection for every variant (the role is switched between blocks), so
    the comparison is not skewed by which CPU each backend process landed on. Each
    variant has its own statement text per plan mode (own prepared statement and plan
    cache); per round the variants run in a shuffled order, and the ratio of each round's
    medians gives the spread (min..max over rounds). `peers` (one server only): the peer
    shapes too, on copies of the hot tables built here and dropped afterwards."""
    peers = peers and not distributed
    shapes = ALL_SHAPES if candidates else tuple(PEER_SHAPES)
    if load_data:
        with database.connect(purpose="bench-load") as conn:
            t0 = time.perf_counter()
            load(conn, companies, conversations, messages)
            total = conn.execute("select count(*) from public.messages").fetchone()
            echo(f"loaded {companies} companies, {companies * conversations} conversations, "
                 f"{total[0] if total else 0} messages in {time.perf_counter() - t0:.1f}s")
    if peers:
        with database.connect(purpose="bench-load") as conn:
            t0 = time.perf_counter()
            build_peers(conn, shapes)
            echo(f"peer policy shapes on copies of {', '.join(HOT_TABLES)} (schema {PEER_SCHEMA}) "
                 f"built in {time.perf_counter() - t0:.1f}s")
    target, params = bench_params(companies)
    rng = random.Random(seed)
    per_block = max(10, iterations // rounds)
    try:
        with database.connect(purpose="bench") as conn:
            pinned, unpin = _pin_cpus(conn)
            echo(f"reads on one connection: {pinned}")
            try:
                results = _measure(conn, target, params, rng, per_block, rounds, distributed, peers, shapes)
            finally:
                unpin()
            for r in results:
                r["cpus"] = pinned
            if explain_into is not None:
                modes = {r["query"]: r["plan_cache"] for r in results}
                slow = {r["query"]: [label for label, v in r["variants"].items()
                                     if v.get("rounds", rounds) < rounds] for r in results}
                explain_into.update(explain(conn, companies, distributed=distributed, peers=peers,
                                            modes=None if distributed else modes, slow=slow,
                                            shapes=shapes))
    finally:
        if peers:
            with database.connect(purpose="bench-load") as conn:
                drop_peers(conn)
    return results


def _measure(conn: psycopg.Connection, target: int, params: dict[str, Any], rng: random.Random,
             per_block: int, rounds: int, distributed: bool = False, peers: bool = False,
             shapes: tuple[PeerShape, ...] = tuple(PEER_SHAPES)) -> list[dict[str, Any]]:
    modes = ("auto",) if distributed else ("generic", "custom")
    results = []
    for q in QUERIES:
        _act_as(conn, target, q.identity)
        claims = _claims(target, q.identity)
        variants = _variants(q, peers, shapes)
        labels = [label for label, _r, _s in variants]
        # one statement per variant and mode: its own prepared statement and plan cache
        runs = [(label, role, _tag(sql, mode), mode) for label, role, sql in variants for mode in modes]
        rows: dict[str, list[str]] = {}
        samples: dict[tuple[str, str], list[float]] = {(r[0], r[3]): [] for r in runs}
        per_round: dict[str, list[float]] = {label: [] for label in labels if label != "baseline"}
        slow: set[str] = set()  # measured in the first round only
        for round_no in range(rounds):
            rng.shuffle(runs)
            meds: dict[tuple[str, str], float] = {}
            for label, role, sql, mode in runs:
                if label in slow:
                    continue
                with _as_variant(conn, role, claims, distributed):
                    conn.execute(f"set plan_cache_mode = {PLAN_MODES[mode]}")
                    block, result = _block(conn, sql, params, per_block, warmup=2, budget=BLOCK_BUDGET_S)
                rows.setdefault(label, sorted(map(str, result)))
                samples[(label, mode)] += block
                meds[(label, mode)] = _low(block)
            best = {label: min(meds[(label, m)] for m in modes) for label in labels if (label, modes[0]) in meds}
            for label, t in best.items():
                if label != "baseline":
                    per_round[label].append(t / best["baseline"])
                    if round_no == 0 and t > SLOW_S and t > SLOW_RATIO * best["baseline"]:
                        slow.add(label)
        conn.execute("reset role")
        conn.execute("reset plan_cache_mode")
        med = {k: _low(v) for k, v in samples.items()}
        fastest = {label: min(modes, key=lambda m, label=label: med[(label, m)]) for label in labels}
        best_us = {label: med[(label, fastest[label])] * 1e6 for label in labels}
        ratio = {label: round(statistics.median(v), 3) for label, v in per_round.items()}
        spread = {label: [round(min(v), 3), round(max(v), 3)] for label, v in per_round.items()}
        held = _plan_cache(conn, [(f"{label} {mode}", None, sql) for label, _r, sql, mode in runs])
        results.append({
            "query": q.name, "same_rows": all(rows[label] == rows["baseline"] for label in labels),
            "rows": len(rows["baseline"]),
            "baseline_us": round(best_us["baseline"], 1),
            "rls_keyed_us": round(best_us["rls+key"], 1), "rls_us": round(best_us["rls"], 1),
            "ratio_rls_keyed": ratio["rls+key"], "ratio_rls": ratio["rls"],
            "spread_rls_keyed": spread["rls+key"], "spread_rls": spread["rls"],
            "rounds": rounds,
            # the plan each variant was timed under (the faster of the two forced modes; on a
            # cluster the server's own choice) and, per mode, whether the server kept to it
            "plan_cache": (_plan_cache(conn, [(label, None, sql) for label, _r, sql, _m in runs])
                           if distributed else fastest),
            "plans_held": {f"{label} {mode}": held[f"{label} {mode}"] for label, _r, _s, mode in runs},
            "variants": {label: {
                "us": round(best_us[label], 1), "plan": fastest[label],
                "us_by_plan": {m: round(med[(label, m)] * 1e6, 1) for m in modes},
                **({"ratio": ratio[label], "spread": spread[label],
                    "rounds": len(per_round[label])} if label != "baseline" else {}),
            } for label in labels},
        })
    return results


def _plans_short(plan_cache: dict[str, str]) -> str:
    """'C/G/G': baseline/rls+key/rls timed under a custom plan, planned at every execution
    (C), under the generic plan, planned once (G), or a mix (M)."""
    short = {"generic": "G", "custom": "C", "unknown": "?"}
    return "/".join(short.get(plan_cache.get(v, "unknown"), "M") for v in ("baseline", "rls+key", "rls"))


# the goals of issue 21 for the peers' comparison
PEER_GOAL_MAX = 1.25
PEER_GOAL_CLAIM_MARGIN = 0.05


def peer_verdict(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Ours against the peer shapes, with the key and without: the fastest fresh shape on
    every hot query? how far above the stale claim? the worst ratio? (goal: fastest, within
    0.05x of the claim, none above 1.25x)."""
    fresh = [s.key for s in PEER_SHAPES if s.fresh]
    stale = [s.key for s in PEER_SHAPES if not s.fresh]
    out: dict[str, Any] = {"not_fastest": [], "claim_margin": {}, "worst": {}}
    for keyed, ours, suffix in ((True, "rls+key", "+key"), (False, "rls", "")):
        mode = "with the key" if keyed else "without the key"
        worst_margin = ("", -99.0)
        worst = ("", 0.0)
        for r in results:
            v = r.get("variants", {})
            if not all(f"{k}{suffix}" in v for k in fresh + stale):
                continue
            mine = v[ours]["ratio"]
            faster = [f"{k} {v[k + suffix]['ratio']:.2f}x" for k in fresh if v[f"{k}{suffix}"]["ratio"] < mine]
            if faster:
                out["not_fastest"].append(f"{r['query']} {'+key' if keyed else 'no key'} "
                                          f"(ours {mine:.2f}x): {', '.join(faster)}")
            margin = mine - min(v[f"{k}{suffix}"]["ratio"] for k in stale)
            worst_margin = max(worst_margin, (r["query"], margin), key=lambda t: t[1])
            worst = max(worst, (r["query"], mine), key=lambda t: t[1])
        out["claim_margin"][mode] = worst_margin
        out["worst"][mode] = worst
    return out


def print_results(results: list[dict[str, Any]], echo: Callable[[str], None], goal: float = 1.10) -> None:
    echo("every variant timed under a generic and a custom plan (plan_cache_mode forced), the faster counts"
         if all("variants" in r and "generic" in next(iter(r["variants"].values()))["us_by_plan"] for r in results)
         else "plans left to the server (plan_cache_mode auto)")
    echo(f"{'query':<42} {'baseline':>9} {'rls+key':>9} {'ratio (min-max)':>17} {'rls':>9} "
         f"{'ratio (min-max)':>17}  rows  plans")
    for r in results:
        lo, hi = r.get("spread_rls_keyed", [r["ratio_rls_keyed"]] * 2)
        lo2, hi2 = r.get("spread_rls", [r["ratio_rls"]] * 2)
        echo(f"{r['query']:<42} {r['baseline_us']:>7.0f}us {r['rls_keyed_us']:>7.0f}us "
             f"{r['ratio_rls_keyed']:>5.2f}x ({lo:.2f}-{hi:.2f}) {r['rls_us']:>7.0f}us "
             f"{r['ratio_rls']:>5.2f}x ({lo2:.2f}-{hi2:.2f})  "
             f"{'same' if r['same_rows'] else 'DIFFER'}  {_plans_short(r.get('plan_cache', {}))}")
    worst = max(r["ratio_rls_keyed"] for r in results)
    echo(f"worst rls+key ratio: {worst:.2f}x (goal <= {goal:.2f}x); plans of baseline/rls+key/rls: "
         "G generic (planned once), C custom (planned at every execution)")
    if any("copy" in r.get("variants", {}) for r in results):
        print_peers(results, echo)


def _peer_cell(r: dict[str, Any], keyed: str, only: str) -> str:
    def one(label: str) -> str:
        v = r["variants"][label]
        return f"{v['ratio']:.2f}{'*' if v['rounds'] < r['rounds'] else ''}"
    return f"{one(keyed)} / {one(only)}"


def print_peers(results: list[dict[str, Any]], echo: Callable[[str], None]) -> None:
    """The hot queries x policy shapes, each as its ratio to the baseline: sent with the
    key / without it (rows: `same` when every variant returned the baseline's rows)."""
    echo("policy shapes on copies of the hot tables (same rows, same indexes), ratio to the baseline, "
         "query sent with company_id = $1 / without it:")
    shapes = [s for s in ALL_SHAPES if f"{s.key}+key" in results[0]["variants"]]
    for shape in shapes:
        echo(f"  {shape.key}: {shape.title}")
    cols = ["ours", *[s.key for s in shapes]]
    echo(f"{'query':<42} {'copy':>5} " + " ".join(f"{c:>15}" for c in cols) + "  rows")
    for r in results:
        v = r["variants"]
        cells = [_peer_cell(r, "rls+key", "rls"), *[_peer_cell(r, f"{s.key}+key", s.key) for s in shapes]]
        echo(f"{r['query']:<42} {v['copy']['ratio']:>5.2f} " + " ".join(f"{c:>15}" for c in cells)
             + f"  {'same' if r['same_rows'] else 'DIFFER'}")
    echo(f"(* measured in the first round only: more than {SLOW_RATIO:.0f}x the baseline)")
    verdict = peer_verdict(results)
    echo("ours the fastest fresh shape on every hot query: "
         + ("yes" if not verdict["not_fastest"] else "no, faster than ours:"))
    for line in verdict["not_fastest"]:
        echo(f"  {line}")
    for mode, (query, margin) in verdict["claim_margin"].items():
        q2, worst = verdict["worst"][mode]
        echo(f"{mode}: ours at most {margin:+.2f}x from the stale claim ({query}; goal <= "
             f"+{PEER_GOAL_CLAIM_MARGIN:.2f}x), worst {worst:.2f}x ({q2}; goal <= {PEER_GOAL_MAX:.2f}x)")


MEMBERSHIPS_SQL = """
insert into private.memberships (auth_user_id, company_id, id, role, is_active)
select auth_user_id, company_id, id, role, is_active from public.users;
"""


def cluster_or_refuse(server: DatabaseTarget | None) -> citus_testdb.CitusNodes:
    """The Citus cluster `server` is the coordinator of, or a clear refusal: bench with
    profile citus measures a cluster, never profile citus on one plain server."""
    hint = ("pass the coordinator: neurant-db --profile citus --database-url "
            "postgresql://<superuser>@<coordinator>/<any distributed database> bench (its "
            "throwaway database is created on every node and dropped afterwards); without "
            "--profile citus the bench measures one PostgreSQL server")
    if server is None:
        raise NeurantError("bench with profile citus measures a Citus cluster, and no server was named",
                           hint=hint)
    nodes = citus_testdb.cluster_nodes(server.url)
    if nodes is None:
        raise NeurantError(f"bench with profile citus: {server.redacted} is not a Citus coordinator with "
                           "workers (no active primary worker in its pg_dist_node)", hint=hint)
    return nodes


def load_distributed(db: TestDatabase, companies: int, conversations: int, messages: int,
                     echo: Callable[[str], None]) -> None:
    """The data set on a cluster: migrated up to the distribution step, loaded into the still
    local tables (triggers off), the membership copy filled from users, then distributed by
    the step's own migration (create_distributed_table copies the rows into the shards): the
    way docs/scale-out.md moves a filled database."""
    step = next(m for m in db.migrations if m.source.name == "citus_distribution")
    before = max(m.version for m in db.migrations if m.version < step.version)
    migrate(db.target, db.migrations, db.settings, to_version=before)
    t0 = time.perf_counter()
    with db.target.connect(purpose="bench-load") as conn:
        conn.execute(LOAD_SQL % {"companies": companies, "conversations": conversations,
                                 "messages": messages})
        conn.execute(MEMBERSHIPS_SQL)
        total = conn.execute("select count(*) from public.messages").fetchone()
    t1 = time.perf_counter()
    migrate(db.target, db.migrations, db.settings)
    db.migrated = True
    with db.target.connect(purpose="bench-load") as conn:
        conn.execute("vacuum (analyze)")
    echo(f"loaded {companies} companies, {companies * conversations} conversations, "
         f"{total[0] if total else 0} messages in {t1 - t0:.1f}s, distributed in "
         f"{time.perf_counter() - t1:.1f}s")


SCALES = {  # companies, conversations per company, messages per conversation
    "200k": (100, 200, 10),
    "2m": (100, 2000, 10),
    "10m": (100, 2000, 50),
}


def _describe_cluster(db: TestDatabase, nodes: citus_testdb.CitusNodes) -> dict[str, Any]:
    with db.target.connect(purpose="bench") as conn:
        row = conn.execute("select extversion, current_setting('citus.shard_count') "
                           "from pg_catalog.pg_extension where extname = 'citus'").fetchone()
    return {"citus": f"Citus {row[0]}" if row else "Citus",
            "shards": int(row[1]) if row else None,
            "coordinator": "{}:{}".format(*nodes.coordinator),
            "workers": ["{}:{}".format(*w) for w in nodes.workers]}


def run_all(server: DatabaseTarget | None, *, scale: str, companies: int | None, conversations: int | None,
            messages: int | None, iterations: int, rounds: int, writes: bool, write_seconds: int,
            reads: bool = True,
            write_repeats: int, show_explain: bool, copy_rows: int = bw.COPY_ROWS, report_dir: Path, as_json: bool,
            echo: Callable[[str], None], profile: str | None = None, tenant_messages: int = 0,
            candidates: bool = False) -> dict[str, Any]:
    """`neurant-db bench`: reads (and --writes) on a throwaway database of `server` (None: of
    a throwaway embedded server; profile citus: distributed over the cluster `server` is the
    coordinator of; `profile` None: the suites' default, test_settings); the results and the
    plans of every hot query are saved into report_dir/bench-<time>-<scale>/."""
    n_comp, n_conv, n_msg = SCALES[scale]
    companies = companies or n_comp
    conversations = conversations or n_conv
    messages = messages or n_msg
    say = (lambda _s: None) if as_json else echo
    profile = test_settings(profile).profile
    nodes = cluster_or_refuse(server) if profile == "citus" else None
    distributed = nodes is not None
    db = provision(server, migrate_schema=not distributed, with_pgtap=False, profile=profile)
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    say(f"bench {started:%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} CPUs, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    cluster = _describe_cluster(db, nodes) if nodes is not None else None
    if cluster:
        say(f"on a Citus cluster: {cluster['citus']}, coordinator {cluster['coordinator']}, "
            f"{len(cluster['workers'])} workers, {cluster['shards']} shards per distributed table")
    plans: dict[str, Any] = {}
    if distributed:
        load_distributed(db, companies, conversations, messages, say)
    if reads:
        results = run(db.target, companies=companies, conversations=conversations, messages=messages,
                      iterations=iterations, echo=say, rounds=rounds, explain_into=plans,
                      load_data=not distributed, distributed=distributed, candidates=candidates)
    else:  # the write benchmark needs the data set all the same
        if not distributed:
            with db.target.connect(purpose="bench-load") as conn:
                load(conn, companies, conversations, messages)
        results = []
    report: dict[str, Any] = {
        "started": started.isoformat(), "machine": platform.node(), "cpus": os.cpu_count(),
        "load_before": load_before, "load_after_reads": os.getloadavg(), "scale": scale, "profile": profile,
        "cluster": cluster,
        "data": {"companies": companies, "conversations_per_company": conversations,
                 "messages_per_conversation": messages}, "reads": results,
    }
    if any("copy" in r.get("variants", {}) for r in results):
        report["peers"] = {"shapes": {s.key: {"title": s.title, "fresh": s.fresh, "using": s.using}
                                      for s in ALL_SHAPES if f"{s.key}+key" in results[0]["variants"]},
                           "verdict": peer_verdict(results)}
    if results and not as_json:  # the goal on a cluster: issue 19 (a hop to the shard in both)
        print_results(results, echo, goal=1.5 if distributed else 1.10)
        echo(f"load after the reads: {' '.join(f'{x:.2f}' for x in report['load_after_reads'])}")
    if writes:
        say("write benchmark ...")
        report["writes"] = bw.run(db.target, nconv=conversations, seconds=write_seconds,
                                  repeats=write_repeats, echo=say, distributed=distributed, copy_rows=copy_rows)
        if not as_json:
            bw.print_results(report["writes"], echo)
    if tenant_messages and distributed:
        say("tenant export/import: measured on profile vanilla only (skipped on a cluster)")
    elif tenant_messages:
        on = server if server is not None else DatabaseTarget(with_database(db.target.url, "postgres"))
        report["tenant"] = bench_tenant.run(on, messages=tenant_messages, load=load, echo=say)
        if not as_json:
            bench_tenant.print_results(report["tenant"], echo)
    report["load_after"] = os.getloadavg()
    out = report_dir / f"bench-{started:%Y%m%d-%H%M%S}-{scale}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    text = "".join(f"== {q} [{v}]\n{plan}\n\n" for q, by in plans.items() for v, plan in by.items())
    (out / "explain.txt").write_text(text, encoding="utf-8")
    if show_explain and not as_json:
        echo(text)
    if as_json:
        echo(json.dumps(report, indent=2, default=str))
    else:
        echo(f"saved: {out}/results.json, {out}/explain.txt")
    return report
