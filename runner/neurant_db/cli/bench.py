"""`neurant-db bench`: RLS cost measured on a throwaway database (bench.py)."""

from __future__ import annotations

from pathlib import Path

import click

from ..bench import run_all
from .context import Context, pass_ctx
from .json_output import json_option


@click.command()
@click.option("--companies", type=int, default=None, help="Companies (default: from --scale).")
@click.option("--conversations", type=int, default=None,
              help="Conversations per company (default: from --scale).")
@click.option("--messages", type=int, default=None,
              help="Messages per conversation (default: from --scale).")
@click.option("--scale", type=click.Choice(["200k", "2m", "10m"]), default="200k", show_default=True,
              help="Data set: 200k messages (200 conversations per company), 2m (2,000 per company) or 10m.")
@click.option("--iterations", type=int, default=1000, show_default=True,
              help="Timed executions per variant and plan mode, over all rounds.")
@click.option("--rounds", type=int, default=10, show_default=True,
              help="Shuffled rounds per query (the spread is over rounds).")
@click.option("--writes", is_flag=True, help="Also run the write benchmark (pgbench, full stack vs bare).")
@click.option("--reads/--no-reads", default=True, show_default=True, help="Run the read benchmark.")
@click.option("--write-seconds", type=int, default=5, show_default=True)
@click.option("--write-repeats", type=int, default=3, show_default=True)
@click.option("--copy-rows", type=int, default=100_000, show_default=True,
              help="Messages in the write benchmark's COPY (a history import); 0 skips it.")
@click.option("--tenant-messages", type=int, default=0, show_default=True,
              help="Also time `tenant export` and `tenant import` of one company with this many messages, "
                   "side by side with plain COPY (make bench: 1,000,000); 0 skips it.")
@click.option("--candidates", is_flag=True,
              help="Also time candidate shapes of our own select policy on the copies, side by side with "
                   "ours there (ours_copy): a policy change measured before it is made.")
@click.option("--explain", "show_explain", is_flag=True, help="Print EXPLAIN (ANALYZE, BUFFERS) of each query.")
@click.option("--report-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where the run (results JSON + plans) is saved.")
@json_option()
@pass_ctx
def bench(c: Context, companies: int | None, conversations: int | None, messages: int | None, scale: str,
          iterations: int, rounds: int, writes: bool, reads: bool, write_seconds: int, write_repeats: int,
          copy_rows: int, tenant_messages: int, candidates: bool, show_explain: bool, report_dir: Path,
          as_json: bool) -> None:
    """Measure hot queries under RLS against the same query without RLS, side by side,
    and (--writes) the message write path against a bare copy of the table. On one server
    the reads also run under the tenant policies people copy (Supabase's guide, basejump's
    helper, an array of tenants, a stale JWT claim) on copies of the hot tables; every read
    variant is timed under a generic and a custom plan, the faster counting.

    Runs on a throwaway server (or a throwaway database on --database-url's server). With
    --profile citus, --database-url names a Citus coordinator: the throwaway database is
    distributed over the cluster (created on every node, dropped on every node afterwards).

    \b
    Example:
      neurant-db bench --companies 50 --iterations 500
      neurant-db bench --scale 2m --writes --explain
      neurant-db bench --no-reads --tenant-messages 100000
      neurant-db --profile citus --database-url postgresql://postgres@coordinator/app bench --writes
    """
    profile = c.overrides["profile"]  # None: the suites' profile (NEURANT_TEST_PROFILE, else vanilla)
    run_all(c.named_server(), scale=scale, companies=companies, conversations=conversations,
            messages=messages, iterations=iterations, rounds=rounds, writes=writes, reads=reads,
            write_seconds=write_seconds, write_repeats=write_repeats, copy_rows=copy_rows,
            show_explain=show_explain, report_dir=report_dir, as_json=as_json, echo=click.echo,
            profile=str(profile) if profile else None, tenant_messages=tenant_messages,
            candidates=candidates)
