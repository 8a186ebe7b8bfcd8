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
for 8 clients on 1 and on 8 tenants (client i writes in tenant 1 + i mod T), one
message or 20 (one INSERT, one conversation) at a time, half end-user, half bot
messages, in open conversations picked at random; and a COPY of 100,000 messages
(a history import over 8 tenants) into public.messages vs bench.messages. Runs
are interleaved: every repeat runs each configuration and variant once, in a
shuffled order, and each ratio (full/bare, floor/bare, full/floor; COPY full/bare
by time) is the median over repeats (spread = min..max). Afterwards usage must
equal the messages written (exact counting), and one profiled run
(track_functions = all) shows the time per message spent in each trigger function.

On a Citus cluster (distributed=True) the bare copies are distributed like the tables
they copy (by company_id, co-located with public.companies), so bare pays the same hop
to the shard as full; the floor is its three writes as three routed statements in one
transaction (FLOOR_CLUSTER_SCRIPT); the trigger profile is left out there (the triggers run on the
workers, whose function statistics a coordinator session does not turn on), and so are the
20-row batches and the COPY (their floor has no routable shape there yet): one-message inserts only.

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
from collections.abc import Callable, Sequence
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

# one INSERT of {rows} messages of one open conversation (rows = 1: a single message, half
# bot half end-user over the run; rows = 20: a batch, as a bot engine writing the user's
# message and the answer together or a channel's history import)
MESSAGE_ROWS = """\\set c 1 + :client_id % :tenants
\\set k random(0, :nconv / 5 - 1)
\\set r random(1, 4)
\\set v 5 * :k + :r
\\set s random(0, 1)
{insert} (company_id, conversation_id, chatbot_id, sender_type, content)
select ('00000000-0000-4000-9000-' || lpad(to_hex(:c::int), 12, '0'))::uuid,
       ('00000000-0000-4000-c000-' || lpad(to_hex(:c::int * 100000 + :v::int), 12, '0'))::uuid,
       ('00000000-0000-4000-b000-' || lpad(to_hex(:c::int * 10 + 1 + :v::int % 4), 12, '0'))::uuid,
       (case when (g + :s::int) % 2 = 0 then 'bot' else 'end_user' end)::public.message_sender_type,
       'Hello, I have a question about the delivery of my order, can you help me?'
  from generate_series(1, {rows}) g"""

SCRIPT = MESSAGE_ROWS + ";\n"

# the floor: one statement, the three writes of the messages (a writable CTE runs them all)
FLOOR_SCRIPT = MESSAGE_ROWS.replace("{insert}", "with m as (\n  insert into bench.messages") + """
  returning company_id, conversation_id, sender_type, created_at),
a as (
  select company_id, conversation_id, max(created_at) as last_at, count(*) as n,
         count(*) filter (where sender_type = 'bot') as bots
    from m group by company_id, conversation_id),
c as (
  update bench.conversations x
     set last_message_at = greatest(x.last_message_at, a.last_at), updated_at = now(),
         bot_turns_without_resolution = x.bot_turns_without_resolution + a.bots
    from a where x.company_id = a.company_id and x.id = a.conversation_id)
insert into bench.company_message_usage as u (company_id, month, shard, message_count, total_message_count)
select a.company_id, date_trunc('month', now() at time zone 'UTC')::date, pg_backend_pid() % 16, sum(a.bots), sum(a.n)
  from a group by a.company_id
on conflict (company_id, month, shard) do update
   set message_count = u.message_count + excluded.message_count,
       total_message_count = u.total_message_count + excluded.total_message_count, updated_at = excluded.updated_at;
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
CONFIGS = [(8, 1), (8, 8)]  # (clients, tenants)
BATCHES = [1, 20]  # messages per INSERT
COPY_ROWS = 100_000
COPY_TENANTS = 8


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


def _script(variant: str, rows: int, distributed: bool = False) -> str:
    if variant == "floor" and distributed:
        return FLOOR_CLUSTER_SCRIPT
    if variant == "floor":
        return FLOOR_SCRIPT.replace("{rows}", str(rows))
    return SCRIPT.replace("{insert}", f"insert into {TABLES[variant]}").replace("{rows}", str(rows))


def _copy_data(nconv: int, rows: int, tenants: int, rng: random.Random) -> bytes:
    """A history import: `rows` messages of the open conversations of `tenants` companies,
    half bot half end-user, in COPY text format."""
    lines = []
    for i in range(rows):
        c = 1 + i % tenants
        v = 5 * rng.randrange(max(1, nconv // 5)) + rng.randint(1, 4)
        sender = "bot" if i % 2 else "end_user"
        lines.append(f"00000000-0000-4000-9000-{c:012x}\t00000000-0000-4000-c000-{c * 100000 + v:012x}\t"
                     f"00000000-0000-4000-b000-{c * 10 + 1 + v % 4:012x}\t{sender}\t"
                     f"Imported message {i} about the delivery of an order\n")
    return "".join(lines).encode()


def _copy_run(url: str, table: str, data: bytes) -> float:
    """Seconds for one COPY of `data` into `table` as service_role, committed."""
    with connect(url, purpose="bench-copy") as conn:
        conn.execute("set role service_role")
        t0 = time.perf_counter()
        with conn.cursor().copy(f"copy {table} (company_id, conversation_id, chatbot_id, sender_type, content) "
                                "from stdin") as cp:
            cp.write(data)
        conn.commit()
        return time.perf_counter() - t0


def _median_spread(xs: list[float]) -> tuple[float, list[float]]:
    return round(statistics.median(xs), 3), [round(min(xs), 3), round(max(xs), 3)]


def run(database: DatabaseTarget, *, nconv: int, seconds: int, repeats: int, echo: Callable[[str], None],
        seed: int = 11, with_profile: bool = True, copy_rows: int = COPY_ROWS,
        distributed: bool = False, configs: Sequence[tuple[int, int]] = tuple(CONFIGS)) -> dict[str, Any]:
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
    batches = [1] if distributed else BATCHES
    copy_rows = 0 if distributed else copy_rows
    for variant in TABLES:
        for rows in batches:
            scripts[(variant, rows)] = tmp / f"{variant}-{rows}.sql"
            scripts[(variant, rows)].write_text(_script(variant, rows, distributed), encoding="utf-8")
    rng = random.Random(seed)
    cells = [(c, t, b) for b in batches for c, t in configs]  # (clients, tenants) x rows per insert
    tps: dict[tuple[int, int, int, str], list[float]] = {}
    ratios: dict[str, dict[tuple[int, int, int], list[float]]] = {
        k: {cell: [] for cell in cells} for k in ("full/bare", "floor/bare", "full/floor")}
    copy_data = _copy_data(nconv, copy_rows, COPY_TENANTS, rng) if copy_rows else b""
    copy_secs: dict[str, list[float]] = {"full": [], "bare": []}
    copy_ratios: list[float] = []
    for rep in range(repeats):
        order: list[tuple[int, int, int, str]] = [(*cell, v) for cell in cells for v in TABLES]
        rng.shuffle(order)
        got = {}
        for clients, tenants, rows, variant in order:
            got[(clients, tenants, rows, variant)] = _one_run(
                pgbench, database.url, scripts[(variant, rows)], clients, tenants, nconv, seconds)
            tps.setdefault((clients, tenants, rows, variant), []).append(got[(clients, tenants, rows, variant)])
        for cell in cells:
            full, bare, floor = (got[(*cell, v)] for v in ("full", "bare", "floor"))
            ratios["full/bare"][cell].append(full / bare)
            ratios["floor/bare"][cell].append(floor / bare)
            ratios["full/floor"][cell].append(full / floor)
        line = ", ".join(f"{c}c/{t}t x{b} {ratios['full/floor'][(c, t, b)][-1]:.2f}x" for c, t, b in cells)
        if copy_rows:
            copy_order = ["full", "bare"]
            rng.shuffle(copy_order)
            took = {v: _copy_run(database.url, TABLES[v], copy_data) for v in copy_order}
            for v, secs in took.items():
                copy_secs[v].append(secs)
            copy_ratios.append(took["bare"] / took["full"])
            line += f", copy {copy_ratios[-1]:.2f}x of bare"
        echo(f"  repeat {rep + 1}/{repeats} (full/floor): {line}")
    with database.connect(purpose="bench-writes") as conn:
        usage_after = conn.execute(
            "select (select coalesce(sum(total_message_count), 0)::bigint from public.company_message_usage), "
            "(select count(*) from public.messages)").fetchone()
    assert usage_before is not None and usage_after is not None
    counted = usage_after[0] - usage_before[0]
    written = usage_after[1] - usage_before[1]
    results = []
    for c, t, b in cells:
        r: dict[str, Any] = {"clients": c, "tenants": t, "rows": b}
        for v in TABLES:
            r[f"{v}_tps"] = round(statistics.median(tps[(c, t, b, v)]), 1)
            r[f"{v}_msgs"] = round(statistics.median(tps[(c, t, b, v)]) * b, 1)
        r["ratio"], r["spread"] = _median_spread(ratios["full/bare"][(c, t, b)])
        r["floor_ratio"], r["floor_spread"] = _median_spread(ratios["floor/bare"][(c, t, b)])
        r["full_floor"], r["full_floor_spread"] = _median_spread(ratios["full/floor"][(c, t, b)])
        results.append(r)
    out: dict[str, Any] = {"pgbench": pgbench, "seconds": seconds, "repeats": repeats,
                           "results": results, "messages_written": written,
                           "usage_counted": counted, "usage_exact": counted == written,
                           "floor": "three statements, one transaction" if distributed else "one statement"}
    if copy_rows:
        ratio, spread = _median_spread(copy_ratios)
        out["copy"] = {"rows": copy_rows, "tenants": COPY_TENANTS,
                       "full_s": round(statistics.median(copy_secs["full"]), 2),
                       "bare_s": round(statistics.median(copy_secs["bare"]), 2),
                       "ratio": ratio, "spread": spread}
    if with_profile and not distributed:
        out["profile"] = profile(database.url, pgbench, scripts[("full", 1)], nconv, seconds)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def print_results(out: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo(f"write path: pgbench -M prepared, {out['seconds']}s runs x {out['repeats']} repeats "
         f"(service_role, half bot / half end-user messages; msg/s = messages per second)")
    echo(f"{'clients':>7} {'tenants':>7} {'rows':>4} {'full msg/s':>10} {'bare msg/s':>10} {'floor msg/s':>11} "
         f"{'full/bare (min-max)':>20} {'floor/bare (min-max)':>21} {'full/floor (min-max)':>21}")
    for r in out["results"]:
        lo, hi = r["spread"]
        flo, fhi = r["floor_spread"]
        plo, phi = r["full_floor_spread"]
        echo(f"{r['clients']:>7} {r['tenants']:>7} {r['rows']:>4} {r['full_msgs']:>10.0f} {r['bare_msgs']:>10.0f} "
             f"{r['floor_msgs']:>11.0f} {r['ratio']:>8.2f}x ({lo:.2f}-{hi:.2f}) "
             f"{r['floor_ratio']:>9.2f}x ({flo:.2f}-{fhi:.2f}) {r['full_floor']:>9.2f}x ({plo:.2f}-{phi:.2f})")
    echo(f"(floor: the message, conversation and usage writes alone, {out.get('floor', 'one statement')}, "
         "no triggers or foreign keys: the best any rule set could do on this data model; goal full/floor >= 0.75)")
    if out.get("copy"):
        cp = out["copy"]
        lo, hi = cp["spread"]
        echo(f"COPY of {cp['rows']} messages ({cp['tenants']} tenants, one transaction): full {cp['full_s']:.2f}s, "
             f"bare {cp['bare_s']:.2f}s, full/bare {cp['ratio']:.2f}x ({lo:.2f}-{hi:.2f}) (goal >= 0.50x)")
    echo(f"usage exact: {out['usage_exact']} ({out['usage_counted']} counted, "
         f"{out['messages_written']} written)")
    if out.get("profile"):
        echo("trigger profile (1 client, single-message inserts, per message):")
        echo(f"  {'function':<48} {'calls':>6} {'self us':>8} {'total us':>9}")
        for p in out["profile"][:15]:
            echo(f"  {p['function']:<48} {p['calls_per_message']:>6} {p['self_us_per_message']:>8} "
                 f"{p['total_us_per_message']:>9}")
