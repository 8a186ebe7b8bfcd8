"""`neurant-db bench`: RLS cost measured side by side, in one run.

Loads a multi-tenant data set (triggers off: this measures reads; then vacuumed, as
autovacuum would, and the members' visible chatbots filled in), then runs each
hot query three ways on the same server, interleaved so drift hits all alike:
  baseline  superuser, no RLS, explicit `company_id = $1`   (the reference)
  rls+key   authenticated user under RLS, still sending `company_id = $1`
  rls       authenticated user under RLS, no explicit tenant filter
and prints medians and the ratios to baseline. All variants run on one
connection (role switched between blocks of queries, blocks shuffled per
round): on a small machine, comparing two connections mostly measures which
CPU their backends landed on. The goal (docs/performance.md) is
rls+key <= 1.10x baseline.

On a Citus cluster (profile citus, --database-url of the coordinator) the data set is
loaded into a throwaway database distributed over every node: migrated up to the
distribution step, loaded locally, then distributed by that step (the path of
docs/scale-out.md, "Moving an existing database"); each block of queries runs in one
transaction opened with the documented request sequence (citus_request.py: session
settings do not reach the workers), the baseline's blocks in a transaction too.
"""

from __future__ import annotations

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

from . import bench_writes as bw
from . import citus_testdb
from .citus_request import request_statements
from .database import DatabaseTarget
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


def _claims(company_no: int, role_no: int) -> dict[str, str]:
    return {"sub": USER.format(company_no * 10 + role_no), "role": "authenticated"}


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


def _block(conn: psycopg.Connection, sql: str, params: dict[str, Any], n: int, warmup: int) -> list[float]:
    out = []
    for i in range(warmup + n):
        start = time.perf_counter()
        conn.execute(sql, params, prepare=True).fetchall()
        if i >= warmup:
            out.append(time.perf_counter() - start)
    return out


def bench_params(companies: int) -> tuple[int, dict[str, Any]]:
    target = max(1, companies // 2)
    return target, {
        "company": COMPANY.format(target),
        "conversation": CONVERSATION.format(target * 100000 + 4),  # chatbot 1: assigned
        "assigned": [ASSIGNED_BOT.format(target * 10 + 1)],
    }


def _variants(q: Query) -> list[tuple[str, str | None, str]]:
    return [("baseline", None, _tag(q.baseline, "baseline")),
            ("rls+key", "authenticated", _tag(q.rls_keyed, "rls+key")),
            ("rls", "authenticated", _tag(q.rls_only, "rls"))]


PARAM_TYPES = {"company": "uuid", "conversation": "uuid", "assigned": "uuid[]"}


def _prepared_text(sql: str) -> str:
    """The variant's statement with the bench's parameters as $1..$3 (all declared)."""
    for i, name in enumerate(PARAM_TYPES, start=1):
        sql = sql.replace(f"%({name})s", f"${i}")
    return sql


def explain(conn: psycopg.Connection, companies: int, *, fmt: str = "text",
            analyze: bool = True, distributed: bool = False) -> dict[str, dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every hot query, every variant, as the bench runs
    it: a prepared statement, explained after the executions that let the plan cache
    settle on its generic or custom plan (the plan the timed loop used).
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
        for label, role, sql in _variants(q):
            with _as_variant(conn, role, _claims(target, q.identity), distributed):
                conn.execute(f"prepare bench_plan ({types}) as {_prepared_text(sql)}")
                for _ in range(6):  # the plan cache decides generic vs custom after 5
                    conn.execute(f"execute bench_plan ({args})").fetchall()
            # (on a cluster in a transaction of its own: EXPLAIN ANALYZE of a multi-shard query
            # cannot follow the coordinator's local reads of reference tables in one)
            with _as_variant(conn, role, _claims(target, q.identity), distributed):
                rows = conn.execute(f"explain ({opts}) execute bench_plan ({args})").fetchall()
            conn.execute("deallocate bench_plan")
            out[q.name][label] = ("\n".join(r[0] for r in rows) if fmt == "text" else rows[0][0])
        conn.execute("reset role")
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
        explain_into: dict[str, Any] | None = None, distributed: bool = False) -> list[dict[str, Any]]:
    """One connection for every variant (the role is switched between blocks), so
    the comparison is not skewed by which CPU each backend process landed on. Each
    variant has its own statement text (own prepared statement and plan cache);
    per round the variants run in a shuffled order, and the ratio of each round's
    medians gives the spread (min..max over rounds)."""
    if load_data:
        with database.connect(purpose="bench-load") as conn:
            t0 = time.perf_counter()
            load(conn, companies, conversations, messages)
            total = conn.execute("select count(*) from public.messages").fetchone()
            echo(f"loaded {companies} companies, {companies * conversations} conversations, "
                 f"{total[0] if total else 0} messages in {time.perf_counter() - t0:.1f}s")
    target, params = bench_params(companies)
    rng = random.Random(seed)
    per_block = max(10, iterations // rounds)
    with database.connect(purpose="bench") as conn:
        pinned, unpin = _pin_cpus(conn)
        echo(f"reads on one connection: {pinned}")
        try:
            results = _measure(conn, target, params, rng, per_block, rounds, distributed)
        finally:
            unpin()
        for r in results:
            r["cpus"] = pinned
        if explain_into is not None:
            explain_into.update(explain(conn, companies, distributed=distributed))
    return results


def _measure(conn: psycopg.Connection, target: int, params: dict[str, Any], rng: random.Random,
             per_block: int, rounds: int, distributed: bool = False) -> list[dict[str, Any]]:
    results = []
    for q in QUERIES:
        _act_as(conn, target, q.identity)
        claims = _claims(target, q.identity)
        variants = _variants(q)
        rows = {}
        for label, role, sql in variants:
            with _as_variant(conn, role, claims, distributed):
                rows[label] = sorted(map(str, conn.execute(sql, params).fetchall()))
        same = rows["baseline"] == rows["rls+key"] == rows["rls"]
        samples: dict[str, list[float]] = {label: [] for label, _r, _s in variants}
        per_round: dict[str, list[float]] = {"rls+key": [], "rls": []}
        for _ in range(rounds):
            rng.shuffle(variants)
            meds = {}
            for label, role, sql in variants:
                with _as_variant(conn, role, claims, distributed):
                    block = _block(conn, sql, params, per_block, warmup=5)
                samples[label] += block
                meds[label] = statistics.median(block)
            for label in per_round:
                per_round[label].append(meds[label] / meds["baseline"])
        conn.execute("reset role")
        med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
        plan_cache = _plan_cache(conn, variants)
        results.append({
            "query": q.name, "same_rows": same, "rows": len(rows["baseline"]),
            "baseline_us": round(med["baseline"], 1),
            "rls_keyed_us": round(med["rls+key"], 1), "rls_us": round(med["rls"], 1),
            "ratio_rls_keyed": round(statistics.median(per_round["rls+key"]), 3),
            "ratio_rls": round(statistics.median(per_round["rls"]), 3),
            "spread_rls_keyed": [round(min(per_round["rls+key"]), 3), round(max(per_round["rls+key"]), 3)],
            "spread_rls": [round(min(per_round["rls"]), 3), round(max(per_round["rls"]), 3)],
            "rounds": rounds, "plan_cache": plan_cache,
        })
    return results


def _plans_short(plan_cache: dict[str, str]) -> str:
    """'C/G/G': baseline/rls+key/rls planned at every execution (C), once (G) or a mix (M)."""
    short = {"generic": "G", "custom": "C", "unknown": "?"}
    return "/".join(short.get(plan_cache.get(v, "unknown"), "M") for v in ("baseline", "rls+key", "rls"))


def print_results(results: list[dict[str, Any]], echo: Callable[[str], None], goal: float = 1.10) -> None:
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
            echo: Callable[[str], None], profile: str | None = None) -> dict[str, Any]:
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
                      load_data=not distributed, distributed=distributed)
    else:  # the write benchmark needs the data set all the same
        if not distributed:
            with db.target.connect(purpose="bench-load") as conn:
                load(conn, companies, conversations, messages)
        results = []
    report: dict[str, Any] = {
        "started": started.isoformat(), "machine": platform.node(), "cpus": os.cpu_count(),
        "load_before": os.getloadavg(), "scale": scale, "profile": profile, "cluster": cluster,
        "data": {"companies": companies, "conversations_per_company": conversations,
                 "messages_per_conversation": messages}, "reads": results,
    }
    if results and not as_json:  # the goal on a cluster: issue 19 (a hop to the shard in both)
        print_results(results, echo, goal=1.5 if distributed else 1.10)
    if writes:
        say("write benchmark ...")
        report["writes"] = bw.run(db.target, nconv=conversations, seconds=write_seconds,
                                  repeats=write_repeats, echo=say, distributed=distributed, copy_rows=copy_rows)
        if not as_json:
            bw.print_results(report["writes"], echo)
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
