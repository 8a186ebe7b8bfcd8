"""`neurant-db bench --tenant`: export and import of one tenant, side by side with plain COPY.

One company with `messages` messages (10 per conversation, the read benchmark's generator,
bench.load, handed in) in a throwaway database; then, in the same run and on the same server:
  export        `tenant export` (one snapshot, COPY out per table, files fsynced and hashed)
  copy out      plain COPY (select ... where company_id = ...) TO STDOUT of the same tables
                into files: no snapshot transaction, no hashing
  import        `tenant import` into a second migrated database (files verified, one
                transaction, every constraint and before-row rule, counts and hashes
                checked again before the commit)
  copy in       plain COPY FROM of the same files into a third migrated database with
                session_replication_role = replica (no trigger, no foreign key check): the
                fastest any load can be, and what import must not do
Each is reported in rows per second (every row of every table, not only messages) and as a
ratio to its plain COPY. Profile vanilla (a Citus import is proved in the tests, not timed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .database import DatabaseTarget
from .tenant_transfer import export_tenant, import_tenant
from .testdb import provision

COMPANY = "00000000-0000-4000-9000-000000000001"
MESSAGES_PER_CONVERSATION = 10
DEFAULT_MESSAGES = 1_000_000


def _qualified(name: str) -> sql.Composed:
    schema, rel = name.split(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(rel))


def _plain_copy_out(target: DatabaseTarget, manifest: dict[str, Any], out: Path) -> None:
    out.mkdir()
    with target.connect(purpose="bench-tenant") as conn:
        for name, entry in manifest["tables"].items():
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in entry["columns"])
            query = sql.SQL("copy (select {} from {} where {} = %s) to stdout").format(
                cols, _qualified(name), sql.Identifier(entry["key"]))
            with conn.cursor() as cur, cur.copy(query, (COMPANY,)) as copy, (out / entry["file"]).open("wb") as f:
                for data in copy:
                    f.write(data)


def _plain_copy_in(target: DatabaseTarget, manifest: dict[str, Any], directory: Path) -> None:
    with target.connect(autocommit=False, purpose="bench-tenant") as conn:
        conn.execute("set session_replication_role = replica")
        for name, entry in manifest["tables"].items():
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in entry["columns"])
            stmt = sql.SQL("copy {} ({}) from stdin").format(_qualified(name), cols)
            with conn.cursor() as cur, cur.copy(stmt) as copy, (directory / entry["file"]).open("rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
        conn.commit()


Loader = Callable[[psycopg.Connection, int, int, int], None]  # bench.load: companies, conversations, messages


def run(server: DatabaseTarget | None, *, messages: int, load: Loader, echo: Callable[[str], None]) -> dict[str, Any]:
    conversations = max(1, messages // MESSAGES_PER_CONVERSATION)
    source, target, plain = (provision(server, with_pgtap=False, profile="vanilla") for _ in range(3))
    with source.target.connect(purpose="bench-tenant") as conn:
        t0 = time.perf_counter()
        load(conn, 1, conversations, MESSAGES_PER_CONVERSATION)
        loaded = time.perf_counter() - t0
    echo(f"tenant bench: 1 company, {conversations} conversations, {conversations * MESSAGES_PER_CONVERSATION} "
         f"messages loaded in {loaded:.1f}s (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    work = Path(tempfile.mkdtemp(prefix="neurant-bench-tenant-"))
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        manifest = export_tenant(source.target, COMPANY, work / "export")
        timings["export"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _plain_copy_out(source.target, manifest, work / "plain")
        timings["copy_out"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        imported = import_tenant(target.target, work / "export")
        timings["import"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _plain_copy_in(plain.target, manifest, work / "plain")
        timings["copy_in"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = sum(int(e["rows"]) for e in manifest["tables"].values())
    rates = {k: rows / v for k, v in timings.items()}
    result = {"messages": manifest["tables"]["public.messages"]["rows"], "rows": rows, "seconds": timings,
              "rows_per_second": rates,
              "ratios": {"export_vs_copy_out": timings["export"] / timings["copy_out"],
                         "import_vs_copy_in": timings["import"] / timings["copy_in"]},
              "import_seconds_per_table": imported["seconds"], "load_after": os.getloadavg()}
    return result


def print_results(result: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo(f"tenant export/import: {result['rows']} rows ({result['messages']} messages)")
    for key, label in (("export", "tenant export"), ("copy_out", "plain COPY out"),
                       ("import", "tenant import"), ("copy_in", "plain COPY in (replica)")):
        echo(f"  {label:<24} {result['seconds'][key]:8.2f}s  {result['rows_per_second'][key]:>12,.0f} rows/s")
    echo(f"  export / copy out {result['ratios']['export_vs_copy_out']:.2f}x, "
         f"import / copy in {result['ratios']['import_vs_copy_in']:.2f}x "
         f"(load after: {' '.join(f'{x:.2f}' for x in result['load_after'])})")
