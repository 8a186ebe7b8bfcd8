"""Reads under RLS on a real Citus cluster against the same keyed query with an explicit
filter (issue 19, deliver 5; docs/scale-out.md "Reads under RLS"): a data set, the hot
queries, their plans, and a measurement that can be rerun.

    .venv/bin/python -m tests.citus_read_speed                  # starts a cluster (root, ../shared/vendor)
    .venv/bin/python -m tests.citus_read_speed --runs 1000
    .venv/bin/python -m tests.citus_read_speed --database-url postgresql://...   # migrated with --profile citus
    .venv/bin/python -m tests.citus_read_speed --database-url URL --before-url OLD  # two commits side by side

`seed(url)` loads one company (4 members, one per role, 4 chatbots, the operador assigned
to the first, 300 conversations, 1,500 messages), `HOT_QUERIES` are the reads, `plan(...)`
returns a query's plan as the member sends it (the documented request sequence), and
`measure(url)` times each hot query as the member under RLS and as `service_role` (no RLS)
with the same explicit `company_id = $1`, alternating on two connections (each one open
request), and returns the medians. Used by tests/test_citus_cluster_reads.py; i19-bench's
`neurant-db bench` on a cluster can call the same functions."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from neurant_db.citus_request import citus_request

COMPANY = "00000000-0000-4000-9000-000000000001"
CONVERSATION = "00000000-0000-4000-c000-000000000007"  # 5 messages
ROLES = ("owner", "administrador", "supervisor", "operador")
OWNER = "00000000-0000-4000-8000-000000000001"  # auth.users ids: 1 owner ... 4 operador
OPERADOR = "00000000-0000-4000-8000-000000000004"

SEED_SQL = """
insert into auth.users (id, email)
select ('00000000-0000-4000-8000-00000000000' || r)::uuid, 'member' || r || '@reads.test' from generate_series(1, 4) r;
insert into public.companies (id, name, subscription_plan) values (:company, 'reads', 'enterprise');
insert into private.memberships (auth_user_id, company_id, id, role, is_active)
select ('00000000-0000-4000-8000-00000000000' || r)::uuid, :company,
       ('00000000-0000-4000-a000-00000000000' || r)::uuid,
       (array['owner', 'administrador', 'supervisor', 'operador'])[r]::public.user_role, true
from generate_series(1, 4) r;
insert into public.users (company_id, id, auth_user_id, email, role)
select :company, ('00000000-0000-4000-a000-00000000000' || r)::uuid,
       ('00000000-0000-4000-8000-00000000000' || r)::uuid,
       'member' || r || '@reads.test', (array['owner', 'administrador', 'supervisor', 'operador'])[r]::public.user_role
from generate_series(1, 4) r;
insert into public.chatbots (company_id, id, name, system_prompt)
select :company, ('00000000-0000-4000-b000-00000000000' || b)::uuid, 'bot ' || b, 'Be kind.'
from generate_series(1, 4) b;
insert into public.chatbot_operators (company_id, chatbot_id, user_id)
values (:company, '00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-000000000004');
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel, status, last_message_at, created_at)
select :company, ('00000000-0000-4000-c000-' || lpad(to_hex(v), 12, '0'))::uuid,
       ('00000000-0000-4000-b000-00000000000' || (1 + v % 4))::uuid, 'visitor-' || v, 'web', 'active',
       now() - (v || ' minutes')::interval, now() - (v || ' minutes')::interval
from generate_series(1, 300) v;
insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content, created_at)
select :company, ('00000000-0000-4000-c000-' || lpad(to_hex(1 + m % 300), 12, '0'))::uuid,
       ('00000000-0000-4000-b000-00000000000' || (1 + (1 + m % 300) % 4))::uuid,
       'end_user', 'message ' || m, now() - (m || ' seconds')::interval
from generate_series(1, 1500) m;
"""


@dataclass(frozen=True)
class HotQuery:
    name: str
    member: str  # the auth identity that reads
    sql: str  # keyed: company_id = %(company)s
    helpers_once: tuple[str, ...]  # helpers of its policies that must not be a per-row filter


HOT_QUERIES = (
    HotQuery("members", OWNER,
             "select id, full_name, role from public.users where company_id = %(company)s order by created_at",
             ("get_user_company_id",)),
    HotQuery("inbox", OWNER,
             "select id, status, last_message_at from public.conversations where company_id = %(company)s "
             "order by last_message_at desc limit 50",
             ("get_user_company_id", "get_visible_chatbot_ids")),
    HotQuery("operador inbox", OPERADOR,
             "select id, status, last_message_at from public.conversations where company_id = %(company)s "
             "order by last_message_at desc limit 50",
             ("get_user_company_id", "get_visible_chatbot_ids")),
    HotQuery("transcript", OWNER,
             "select id, sender_type, content, created_at from public.messages where company_id = %(company)s "
             "and conversation_id = %(conversation)s order by created_at desc limit 100",
             ("get_user_company_id", "get_visible_chatbot_ids")),
    # chatbots.select_visible keeps the role test (owner/administrador/supervisor or an
    # assigned chatbot): an OR with a column, so get_user_role() is a filter, per chatbot.
    HotQuery("chatbots", OWNER,
             "select id, name from public.chatbots where company_id = %(company)s order by name",
             ("get_user_company_id",)),
)
PARAMS = {"company": COMPANY, "conversation": CONVERSATION}


def seed(url: str) -> None:
    """Load the data set into a database migrated with --profile citus (as its owner)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select 1 from public.companies where id = %s", (COMPANY,)).fetchone():
            return
        text = SEED_SQL.replace(":company", f"'{COMPANY}'")
        with conn.transaction():
            for statement in filter(None, (s.strip() for s in text.split(";\n"))):
                conn.execute(statement.encode())
        conn.execute("analyze")


@contextmanager
def _member(url: str, sub: str | None) -> Iterator[psycopg.Connection[Any]]:
    """An open request of `sub` (None: the backend as service_role), the documented sequence."""
    claims = {"sub": sub, "role": "authenticated"} if sub else {"role": "service_role"}
    with psycopg.connect(url, autocommit=True) as conn, \
            citus_request(conn, claims, "authenticated" if sub else "service_role") as request:
        yield request


def plan(url: str, query: HotQuery, *, analyze: bool = False) -> str:
    """The query's plan (with the worker's) as its member sends it."""
    options = "analyze, verbose, buffers off" if analyze else "verbose"
    with _member(url, query.member) as conn:
        rows = conn.execute(f"explain ({options}) {query.sql}", PARAMS).fetchall()
    return "\n".join(str(r[0]) for r in rows)


def per_row_helpers(text: str, helpers: Sequence[str]) -> list[str]:
    """The helpers of `helpers` that a plan evaluates per row: named in a `Filter:` line
    (an `Index Cond:` runs once per scan, a `One-Time Filter:` once)."""
    lines = [line.strip() for line in text.splitlines()]
    return [h for h in helpers for line in lines if line.startswith("Filter:") and f"{h}()" in line]


@dataclass(frozen=True)
class Timing:
    name: str
    baseline_ms: float  # service_role, no RLS, same keyed query: median
    rls_ms: float  # the member under RLS: median
    baseline_p10_ms: float  # the 10th percentiles: on a loaded machine the scheduler's
    rls_p10_ms: float  # delays only add, so the low end is the steadier comparison

    @property
    def ratio(self) -> float:
        return self.rls_ms / self.baseline_ms

    @property
    def ratio_p10(self) -> float:
        return self.rls_p10_ms / self.baseline_p10_ms


def _once(conn: psycopg.Connection[Any], sql: str) -> float:
    start = time.perf_counter()
    conn.execute(sql, PARAMS).fetchall()
    return (time.perf_counter() - start) * 1000


def measure(url: str, runs: int = 300, warmup: int = 30) -> list[Timing]:
    """Median wall time of each hot query, the member under RLS and service_role without
    it, alternating run by run on two open requests (so load drift hits both alike)."""
    out = []
    for query in HOT_QUERIES:
        with _member(url, None) as base, _member(url, query.member) as member:
            base_ms, rls_ms = [], []
            for i in range(warmup + runs):
                b, r = _once(base, query.sql), _once(member, query.sql)
                if i >= warmup:
                    base_ms.append(b)
                    rls_ms.append(r)
        out.append(Timing(query.name, statistics.median(base_ms), statistics.median(rls_ms),
                          statistics.quantiles(base_ms, n=10)[0], statistics.quantiles(rls_ms, n=10)[0]))
    return out


def report(timings: Sequence[Timing]) -> str:
    return "\n".join(f"{t.name:16s} median: explicit filter {t.baseline_ms:6.3f} ms, under RLS {t.rls_ms:6.3f} ms, "
                     f"{t.ratio:4.2f}x;  p10: {t.baseline_p10_ms:6.3f} ms, {t.rls_p10_ms:6.3f} ms, {t.ratio_p10:4.2f}x"
                     for t in timings)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.citus_read_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a distributed database migrated with --profile citus "
                        "(default: start a cluster and create one)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="measure this many times, print each")
    parser.add_argument("--before-url", help="another migrated distributed database (an older commit's) "
                        "measured just before --database-url in each round, side by side")
    args = parser.parse_args(argv)

    def run(url: str) -> None:
        seed(url)
        for query in HOT_QUERIES:
            text = plan(url, query)
            tasks = [line.strip() for line in text.splitlines() if "Task Count" in line]
            print(f"{query.name:16s} {tasks[0] if tasks else '?'}; per-row helpers: "
                  f"{per_row_helpers(text, query.helpers_once) or 'none'}")
        for n in range(args.rounds):
            load = f", load average {os.getloadavg()[0]:.1f}"
            if args.before_url:
                seed(args.before_url)
                print(f"round {n + 1} before (median of {args.runs}{load}):\n"
                      f"{report(measure(args.before_url, args.runs))}", flush=True)
            print(f"round {n + 1} (median of {args.runs}{load}):\n{report(measure(url, args.runs))}", flush=True)

    if args.database_url:
        run(args.database_url)
        return
    from click.testing import CliRunner

    from neurant_db.cli import cli

    from .citus_cluster import citus_cluster, distributed_database, missing_reason

    reason = missing_reason()
    if reason:
        raise SystemExit(f"no Citus cluster: {reason}")
    with citus_cluster() as cluster, distributed_database(cluster) as url:
        result = CliRunner().invoke(cli, ["--database-url", url, "--profile", "citus",
                                          "--embedding-dimensions", "8", "migrate"])
        if result.exit_code != 0:
            raise SystemExit(result.output)
        run(url)


if __name__ == "__main__":
    main()
