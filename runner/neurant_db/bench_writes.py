"""`neurant-db bench --writes`: the message write path, full stack vs a bare copy.

On the data set loaded by the read bench, pgbench (prepared statements, one
connection per client) inserts messages into
  full  public.messages as service_role: every trigger (tenant guard, write rules,
        usage counted against the plan, conversation bookkeeping, HITL escalation),
        foreign keys and policies;
  bare  bench.messages, a copy of the table (same columns, defaults, checks,
        indexes and rows) without triggers, foreign keys or policies;
  floor the writes every message needs whatever the rules: the message into
        bench.messages, its conversation's activity into bench.conversations and
        the month's usage into bench.company_message_usage (copies like the
        above), in one statement without triggers or foreign keys - what the
        full stack would cost if its rules were free; full/floor is the price of
        the rules themselves, floor/bare that of the data model;
for 1 and 8 clients on 1 and 8 tenants (client i writes in tenant 1 + i mod T),
half end-user, half bot messages, in open conversations picked at random. Runs
are interleaved: every repeat runs each configuration and variant once, in a
shuffled order, and the ratio full/bare is the median over repeats (spread =
min..max). Afterwards usage must equal the messages written (exact counting),
and one profiled run (track_functions = all) shows the time per message spent
in each trigger function.

On a Citus cluster (distributed=True) the bare copies are distributed like the tables
they copy (by company_id, co-located with public.companies), so bare pays the same hop
to the shard as full; the floor is its three writes as three routed statements in one
transaction (FLOOR_CLUSTER_SCRIPT); the trigger profile is left out there (the triggers run on the
workers, whose function statistics a coordinator session does not turn on).
"""

from __future__ import annotations

import glob
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from .database import DatabaseTarget, connect, scrub
from .errors import NeurantError
from .server import postgres_bin_dir

# pgbench logs in as the bench's own user and becomes service_role at connection start
# (the role setting in the startup options): no login role is created for it, so nothing
# that could bypass RLS is left on the server, and a password server needs no second password.
PGBENCH_OPTIONS = "-c role=service_role"

SETUP_SQL = """
create schema if not exists bench;
grant usage on schema bench to service_role;
drop table if exists bench.messages;
create table bench.messages (like public.messages including defaults including constraints including indexes);
insert into bench.messages select * from public.messages;
grant select, insert on bench.messages to service_role;
drop table if exists bench.conversations;
create table bench.conversations (like public.conversations including all);
insert into bench.conversations ({conversation_columns}) select {conversation_columns} from public.conversations;
grant select, update on bench.conversations to service_role;
drop table if exists bench.company_message_usage;
create table bench.company_message_usage (like public.company_message_usage including all);
insert into bench.company_message_usage select * from public.company_message_usage;
grant select, insert, update on bench.company_message_usage to service_role;
update public.chatbots
   set hitl_keywords = '{refund,cancel my order,complaint,lawyer,manager,broken,not working,chargeback}'
 where company_id in (select id from public.companies);
analyze;
"""

SCRIPT = """\\set c 1 + :client_id % :tenants
\\set k random(0, :nconv / 5 - 1)
\\set r random(1, 4)
\\set v 5 * :k + :r
\\set s random(0, 1)
insert into {table} (company_id, conversation_id, chatbot_id, sender_type, content)
values (('00000000-0000-4000-9000-' || lpad(to_hex(:c::int), 12, '0'))::uuid,
        ('00000000-0000-4000-c000-' || lpad(to_hex(:c::int * 100000 + :v::int), 12, '0'))::uuid,
        ('00000000-0000-4000-b000-' || lpad(to_hex(:c::int * 10 + 1 + :v::int % 4), 12, '0'))::uuid,
        (case when :s::int = 0 then 'bot' else 'end_user' end)::public.message_sender_type,
        'Hello, I have a question about the delivery of my order, can you help me?');
"""

# the floor: one statement, the three writes of a message (a writable CTE runs them all)
FLOOR_SCRIPT = """\\set c 1 + :client_id % :tenants
\\set k random(0, :nconv / 5 - 1)
\\set r random(1, 4)
\\set v 5 * :k + :r
\\set s random(0, 1)
with m as (
  insert into bench.messages (company_id, conversation_id, chatbot_id, sender_type, content)
  values (('00000000-0000-4000-9000-' || lpad(to_hex(:c::int), 12, '0'))::uuid,
          ('00000000-0000-4000-c000-' || lpad(to_hex(:c::int * 100000 + :v::int), 12, '0'))::uuid,
          ('00000000-0000-4000-b000-' || lpad(to_hex(:c::int * 10 + 1 + :v::int % 4), 12, '0'))::uuid,
          (case when :s::int = 0 then 'bot' else 'end_user' end)::public.message_sender_type,
          'Hello, I have a question about the delivery of my order, can you help me?')
  returning company_id, conversation_id, sender_type, created_at),
c as (
  update bench.conversations x
     set last_message_at = greatest(x.last_message_at, m.created_at), updated_at = now(),
         bot_turns_without_resolution = x.bot_turns_without_resolution + (m.sender_type = 'bot')::int
    from m where x.company_id = m.company_id and x.id = m.conversation_id)
insert into bench.company_message_usage as u (company_id, month, shard, message_count, total_message_count)
select m.company_id, date_trunc('month', now() at time zone 'UTC')::date, pg_backend_pid() % 16,
       (m.sender_type = 'bot')::int, 1
  from m
on conflict (company_id, month, shard) do update
   set message_count = u.message_count + excluded.message_count,
       total_message_count = u.total_message_count + 1, updated_at = excluded.updated_at;
"""

# profile citus: the bare copies placed like the tables they copy
DISTRIBUTE_SQL = """
select create_distributed_table(t, 'company_id', colocate_with => 'public.companies')
  from unnest(array['bench.messages', 'bench.conversations', 'bench.company_message_usage']) t;
"""

# the floor on a Citus cluster: the same three writes as three statements in one transaction,
# each naming its company (routed to its shard); the one statement above is not routable
# there (its CTE's rows reach the UPDATE and the upsert as an intermediate result: every shard)
FLOOR_CLUSTER_SCRIPT = """\\set c 1 + :client_id % :tenants
\\set k random(0, :nconv / 5 - 1)
\\set r random(1, 4)
\\set v 5 * :k + :r
\\set s random(0, 1)
begin;
insert into bench.messages (company_id, conversation_id, chatbot_id, sender_type, content)
values (('00000000-0000-4000-9000-' || lpad(to_hex(:c::int), 12, '0'))::uuid,
        ('00000000-0000-4000-c000-' || lpad(to_hex(:c::int * 100000 + :v::int), 12, '0'))::uuid,
        ('00000000-0000-4000-b000-' || lpad(to_hex(:c::int * 10 + 1 + :v::int % 4), 12, '0'))::uuid,
        (case when :s::int = 0 then 'bot' else 'end_user' end)::public.message_sender_type,
        'Hello, I have a question about the delivery of my order, can you help me?');
update bench.conversations
   set last_message_at = greatest(last_message_at, now()), updated_at = now(),
       bot_turns_without_resolution = bot_turns_without_resolution + (case when :s::int = 0 then 1 else 0 end)
 where company_id = ('00000000-0000-4000-9000-' || lpad(to_hex(:c::int), 12, '0'))::uuid
   and id = ('00000000-0000-4000-c000-' || lpad(to_hex(:c::int * 100000 + :v::int), 12, '0'))::uuid;
insert into bench.company_message_usage as u (company_id, month, shard, message_count, total_message_count)
values (('00000000-0000-4000-9000-' || lpad(to_hex(:c::int), 12, '0'))::uuid,
        date_trunc('month', now() at time zone 'UTC')::date, :client_id % 16,
        case when :s::int = 0 then 1 else 0 end, 1)
on conflict (company_id, month, shard) do update
   set message_count = u.message_count + excluded.message_count,
       total_message_count = u.total_message_count + 1, updated_at = excluded.updated_at;
commit;
"""

TABLES = {"full": "public.messages", "bare": "bench.messages", "floor": "bench.messages"}
CONFIGS = [(1, 1), (8, 1), (8, 8)]  # (clients, tenants)


def find_pgbench() -> str | None:
    """pgbench of the embedded server, on PATH, or of Debian's postgresql packages."""
    env = os.environ.get("NEURANT_PGBENCH")
    if env:
        return env
    try:
        cand = postgres_bin_dir() / "pgbench"
        if cand.is_file():
            return str(cand)
    except Exception:
        pass
    found = shutil.which("pgbench")
    if found:
        return found
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"),
                    key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return debian[-1] if debian else None


def _pgbench_args(url: str, options: str = PGBENCH_OPTIONS) -> tuple[list[str], dict[str, str]]:
    """pgbench's connection: the user, host, port and database of `url` as arguments, its
    password (if any) and the startup options in the environment (never on the command line)."""
    info = conninfo_to_dict(url)
    args = ["-U", str(info["user"])] if info.get("user") else []
    if info.get("host"):
        args += ["-h", str(info["host"])]
    if info.get("port"):
        args += ["-p", str(info["port"])]
    env = dict(os.environ)
    env["PGOPTIONS"] = options
    if info.get("password"):
        env["PGPASSWORD"] = str(info["password"])
    args.append(str(info.get("dbname", "postgres")))
    return args, env


def _one_run(pgbench: str, url: str, script: Path, clients: int, tenants: int, nconv: int,
             seconds: int, options: str = PGBENCH_OPTIONS) -> float:
    conn_args, env = _pgbench_args(url, options)
    cmd = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
           "-T", str(seconds), "-f", str(script), "-D", f"tenants={tenants}", "-D", f"nconv={nconv}",
           *conn_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", proc.stdout)
    failed = re.search(r"number of failed transactions: ([1-9][0-9]*)", proc.stdout)
    if proc.returncode != 0 or not m or failed:
        output = scrub(f"{proc.stdout.strip()}\n{proc.stderr.strip()}".strip(), url)
        raise NeurantError(f"pgbench failed ({' '.join(cmd)}):\n{output[-2000:]}",
                           hint="pgbench logs in as the bench's user and sets role service_role: that "
                           "user must be a member of service_role (a superuser is)")
    return float(m.group(1))


def profile(url: str, pgbench: str, script: Path, nconv: int, seconds: int) -> list[dict[str, Any]]:
    """Per-function time per message of one 1-client full-stack run (track_functions = all)."""
    with connect(url, autocommit=True, purpose="bench-profile") as conn:
        conn.execute("select pg_stat_reset()")
        before = conn.execute("select count(*) from public.messages").fetchone()
    _one_run(pgbench, url, script, 1, 1, nconv, seconds, options=f"{PGBENCH_OPTIONS} -c track_functions=all")
    with connect(url, autocommit=True, purpose="bench-profile") as conn:
        time.sleep(0.6)  # function statistics reach the cumulative stats at session end
        conn.execute("select pg_stat_clear_snapshot()")
        after = conn.execute("select count(*) from public.messages").fetchone()
        n = max(1, (after[0] if after else 0) - (before[0] if before else 0))
        rows = conn.execute(
            "select schemaname || '.' || funcname, calls, self_time, total_time "
            "from pg_stat_user_functions order by self_time desc").fetchall()
    return [{"function": f, "calls_per_message": round(calls / n, 2),
             "self_us_per_message": round(self_ms * 1000 / n, 1),
             "total_us_per_message": round(total_ms * 1000 / n, 1)}
            for f, calls, self_ms, total_ms in rows if calls]


def run(database: DatabaseTarget, *, nconv: int, seconds: int, repeats: int, echo: Callable[[str], None],
        seed: int = 11, with_profile: bool = True, distributed: bool = False) -> dict[str, Any]:
    pgbench = find_pgbench()
    if pgbench is None:
        raise NeurantError("pgbench not found: install Debian's postgresql-client-common/"
                           "postgresql-15 (or set NEURANT_PGBENCH)")
    with database.connect(purpose="bench-writes") as conn:
        columns = conn.execute(
            "select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute "
            "where attrelid = 'public.conversations'::regclass and attnum > 0 and not attisdropped "
            "and attgenerated = ''").fetchone()
        assert columns is not None
        conn.execute(SETUP_SQL.replace("{conversation_columns}", columns[0]))
        if distributed:
            conn.execute(DISTRIBUTE_SQL)
        usage_before = conn.execute(
            "select (select coalesce(sum(total_message_count), 0)::bigint from public.company_message_usage), "
            "(select count(*) from public.messages)").fetchone()
    tmp = Path(tempfile.mkdtemp(prefix="neurant-bench-"))
    scripts = {}
    for variant, table in TABLES.items():
        scripts[variant] = tmp / f"{variant}.sql"
        floor = FLOOR_CLUSTER_SCRIPT if distributed else FLOOR_SCRIPT
        text = floor if variant == "floor" else SCRIPT.format(table=table)
        scripts[variant].write_text(text, encoding="utf-8")
    rng = random.Random(seed)
    tps: dict[tuple[int, int, str], list[float]] = {}
    ratios: dict[tuple[int, int], list[float]] = {cfg: [] for cfg in CONFIGS}
    floor_ratios: dict[tuple[int, int], list[float]] = {cfg: [] for cfg in CONFIGS}
    for rep in range(repeats):
        order = [(c, t, v) for c, t in CONFIGS for v in TABLES]
        rng.shuffle(order)
        got = {}
        for clients, tenants, variant in order:
            got[(clients, tenants, variant)] = _one_run(pgbench, database.url, scripts[variant], clients, tenants,
                                                        nconv, seconds)
            tps.setdefault((clients, tenants, variant), []).append(got[(clients, tenants, variant)])
        for cfg in CONFIGS:
            ratios[cfg].append(got[(*cfg, "full")] / got[(*cfg, "bare")])
            floor_ratios[cfg].append(got[(*cfg, "floor")] / got[(*cfg, "bare")])
        echo(f"  repeat {rep + 1}/{repeats}: " + ", ".join(
            f"{c}c/{t}t {got[(c, t, 'full')] / got[(c, t, 'bare')]:.2f}x "
            f"(floor {got[(c, t, 'floor')] / got[(c, t, 'bare')]:.2f}x)" for c, t in CONFIGS))
    with database.connect(purpose="bench-writes") as conn:
        usage_after = conn.execute(
            "select (select coalesce(sum(total_message_count), 0)::bigint from public.company_message_usage), "
            "(select count(*) from public.messages)").fetchone()
    assert usage_before is not None and usage_after is not None
    counted = usage_after[0] - usage_before[0]
    written = usage_after[1] - usage_before[1]
    results = [{
        "clients": c, "tenants": t,
        "full_tps": round(statistics.median(tps[(c, t, "full")]), 1),
        "bare_tps": round(statistics.median(tps[(c, t, "bare")]), 1),
        "floor_tps": round(statistics.median(tps[(c, t, "floor")]), 1),
        "ratio": round(statistics.median(ratios[(c, t)]), 3),
        "spread": [round(min(ratios[(c, t)]), 3), round(max(ratios[(c, t)]), 3)],
        "floor_ratio": round(statistics.median(floor_ratios[(c, t)]), 3),
        "floor_spread": [round(min(floor_ratios[(c, t)]), 3), round(max(floor_ratios[(c, t)]), 3)],
    } for c, t in CONFIGS]
    out: dict[str, Any] = {"pgbench": pgbench, "seconds": seconds, "repeats": repeats,
                           "results": results, "messages_written": written,
                           "usage_counted": counted, "usage_exact": counted == written,
                           "floor": "three statements, one transaction" if distributed else "one statement"}
    if with_profile and not distributed:
        out["profile"] = profile(database.url, pgbench, scripts["full"], nconv, seconds)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def print_results(out: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo(f"write path: pgbench -M prepared, {out['seconds']}s runs x {out['repeats']} repeats "
         f"(service_role, half bot / half end-user messages)")
    echo(f"{'clients':>7} {'tenants':>7} {'full tps':>9} {'bare tps':>9} {'full/bare (min-max)':>20} "
         f"{'floor tps':>9} {'floor/bare (min-max)':>21}")
    for r in out["results"]:
        lo, hi = r["spread"]
        flo, fhi = r.get("floor_spread", [0.0, 0.0])
        echo(f"{r['clients']:>7} {r['tenants']:>7} {r['full_tps']:>9.0f} {r['bare_tps']:>9.0f} "
             f"{r['ratio']:>8.2f}x ({lo:.2f}-{hi:.2f}) {r.get('floor_tps', 0):>9.0f} "
             f"{r.get('floor_ratio', 0):>9.2f}x ({flo:.2f}-{fhi:.2f})")
    echo(f"(floor: the message, conversation and usage writes alone, {out.get('floor', 'one statement')}, "
         "no triggers or foreign keys: the best any rule set could do on this data model)")
    echo(f"usage exact: {out['usage_exact']} ({out['usage_counted']} counted, "
         f"{out['messages_written']} written)")
    if out.get("profile"):
        echo("trigger profile (1 client, per message):")
        echo(f"  {'function':<48} {'calls':>6} {'self us':>8} {'total us':>9}")
        for p in out["profile"][:15]:
            echo(f"  {p['function']:<48} {p['calls_per_message']:>6} {p['self_us_per_message']:>8} "
                 f"{p['total_us_per_message']:>9}")
