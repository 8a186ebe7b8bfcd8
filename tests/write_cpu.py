"""Backend CPU per message INSERT, the full stack against the floor, on several databases side
by side (issue 21; docs/performance.md, "Third round"). pgbench's 5 s runs spread too widely
on a shared machine to rank two versions of the write path (0.2x-8x in one run); the CPU time
the server spends per statement does not depend on how long the backend waited for a CPU.

    # two databases of one local server: one migrated from another commit's SQL tree
    NEURANT_SQL_ROOT=/path/to/old/tree .venv/bin/neurant-db --database-url URL_OLD migrate
    .venv/bin/neurant-db --database-url URL_NEW migrate
    .venv/bin/python -m tests.write_cpu --load URL_OLD --load URL_NEW      # the bench's 200k data set
    .venv/bin/python -m tests.write_cpu URL_OLD URL_NEW --rounds 300

For each database one connection per variant (`full`: public.messages as service_role, every
trigger, foreign key and policy; `floor`: the message, conversation and usage writes into bare
copies in one statement: runner/neurant_db/bench_writes.py's statements), prepared statements;
rounds of blocks of single-message and of 20-message inserts (the bench's rows: half bot, half
end-user, random open conversations of 8 tenants), databases and variants in a shuffled order
per round. A block's cost is the backend's CPU time (`/proc/<pid>/schedstat`, so the server must
run on this machine) divided by its statements; each variant's number is the lower quartile of
its blocks. Prints full/floor per database and each database's full against the first one's.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
from collections.abc import Sequence

import psycopg

from neurant_db import bench, bench_writes

VARIANTS = ("full", "floor")
TENANTS = 8


def statement(variant: str, rows: int) -> str:
    """The bench's INSERT of `variant` with `rows` messages, its pgbench variables as parameters."""
    script = bench_writes._script(variant, rows).rstrip().rstrip(";")
    body = "\n".join(line for line in script.splitlines() if not line.startswith("\\set")).replace("%", "%%")
    for name in ("c", "v", "s"):
        body = body.replace(f":{name}::int", f"%({name})s::int")
    return body


def load(url: str, conversations: int = 200) -> None:
    """The bench's data set (100 companies, `conversations` each, 10 messages per conversation)
    and the bare copies the floor writes into, on a migrated database."""
    with psycopg.connect(url, autocommit=True) as conn:
        bench.load(conn, 100, conversations, 10)
        row = conn.execute(
            "select string_agg(quote_ident(attname), ', ' order by attnum) from pg_attribute "
            "where attrelid = 'public.conversations'::regclass and attnum > 0 and not attisdropped "
            "and attgenerated = ''").fetchone()
        assert row is not None
        conn.execute(bench_writes.SETUP_SQL.replace("{conversation_columns}", str(row[0])))
        conn.execute("vacuum analyze")


def _cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
        return int(f.read().split()[0])


def measure(urls: Sequence[str], *, rounds: int, block1: int, block20: int,
            conversations: int = 200, seed: int = 7) -> dict[tuple[int, str, str], list[float]]:
    """CPU microseconds per statement of every block, by (rows, url, variant)."""
    rng = random.Random(seed)
    conns: dict[tuple[str, str], tuple[psycopg.Connection, int]] = {}
    try:
        for url in urls:
            for variant in VARIANTS:
                conn = psycopg.connect(url, autocommit=True)
                conn.execute("set role service_role")
                row = conn.execute("select pg_backend_pid()").fetchone()
                assert row is not None
                conns[(url, variant)] = (conn, int(row[0]))

        def params() -> dict[str, int]:
            k = rng.randrange(conversations // 5)
            return {"c": rng.randint(1, TENANTS), "v": 5 * k + rng.randint(1, 4), "s": rng.randint(0, 1)}

        out: dict[tuple[int, str, str], list[float]] = {}
        for rows, block in ((1, block1), (20, block20)):
            texts = {v: statement(v, rows) for v in VARIANTS}
            for (_url, variant), (conn, _pid) in conns.items():  # warm the caches and plans
                for _ in range(20):
                    conn.execute(texts[variant], params(), prepare=True)
            for _ in range(rounds):
                order = list(conns)
                rng.shuffle(order)
                for key in order:
                    conn, pid = conns[key]
                    batch = [params() for _ in range(block)]
                    before = _cpu_ns(pid)
                    for p in batch:
                        conn.execute(texts[key[1]], p, prepare=True)
                    out.setdefault((rows, *key), []).append((_cpu_ns(pid) - before) / block / 1000)
        return out
    finally:
        for conn, _pid in conns.values():
            conn.close()


def lower_quartile(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=4)[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.write_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="*", help="migrated and loaded databases of one local server")
    parser.add_argument("--load", action="append", default=[], metavar="URL",
                        help="load the bench's data set and bare copies into this migrated database")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--block1", type=int, default=50, help="single-message inserts per block")
    parser.add_argument("--block20", type=int, default=8, help="20-message inserts per block")
    args = parser.parse_args(argv)
    for url in args.load:
        load(url)
        print(f"loaded {url}")
    if not args.urls:
        return
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    res = measure(args.urls, rounds=args.rounds, block1=args.block1, block20=args.block20)
    for rows in (1, 20):
        first = lower_quartile(res[(rows, args.urls[0], "full")])
        for i, url in enumerate(args.urls):
            full = lower_quartile(res[(rows, url, "full")])
            floor = lower_quartile(res[(rows, url, "floor")])
            line = (f"rows {rows:>2} db{i + 1}: full {full:6.0f} us, floor {floor:6.0f} us, "
                    f"full/floor {floor / full:.2f}x")
            if i:
                line += f", CPU against db1 {full / first:.3f}"
            print(line)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
