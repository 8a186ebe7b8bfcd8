"""`neurant-db top`: per-tenant observability (a thin click layer over observe.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..observe import TopReport, collect_top
from .context import Context, pass_ctx
from .json_output import emit, json_option


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "none") -> None:
    click.secho(title, bold=True)
    if not rows:
        click.echo(f"  ({empty})")
        click.echo()
        return
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    click.echo("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    click.echo()


def _print(report: TopReport) -> None:
    sample = f"; per-tenant sample of {report.sample_at:%Y-%m-%d %H:%M:%S %Z}" if report.sample_at else ""
    click.echo(f"database {report.database} at {report.as_of:%Y-%m-%d %H:%M:%S %Z}"
               f"{' (standby)' if report.in_recovery else ''}{sample}")
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo()
    _table("Top tenants by messages (live + archived)", ["company_id", "name", "messages"],
           [(t["company_id"], t["name"], t["messages"]) for t in report.by_messages])
    _table("Top tenants by storage", ["company_id", "name", "storage_bytes", "row_bytes", "growth_bytes"],
           [(t["company_id"], t["name"], t["storage_bytes"], t["row_bytes"], t["growth_bytes"])
            for t in report.by_storage])
    _table("Top tenants by query load (labelled sessions now)", ["company_id", "name", "sessions", "active",
                                                                   "active_seconds"],
           [(t["company_id"], t["name"], t["sessions"], t["active"], t["active_seconds"]) for t in report.by_load],
           empty="no session labelled <service>:<company_id> (docs/services.md)")
    _table("Sessions by label", ["label", "sessions", "active", "idle_in_xact", "longest_xact_s", "longest_query"],
           [(g["label"] or "(none)", g["sessions"], g["active"], g["idle_in_transaction"], g["longest_xact_seconds"],
             (g["longest_query"] or "")[:60].replace("\n", " ")) for g in report.sessions])
    reset = f"{report.stats_reset:%Y-%m-%d %H:%M}" if report.stats_reset else "server start"
    _table(f"Unused indexes ({report.unused_index_count}, no scan since {reset})", ["index", "table", "bytes"],
           [(i["index"], i["table"], i["bytes"]) for i in report.unused_indexes])
    _table("Duplicate indexes", ["index", "covered_by", "columns", "bytes"],
           [(d["index"], ", ".join(d["covered_by"]), d["columns"], d["bytes"]) for d in report.duplicate_indexes])
    if report.standby is not None:
        s = report.standby
        _table("Standby replay", ["replay_delay_s", "unreplayed_bytes", "receiver"],
               [(s["replay_delay_seconds"], s["unreplayed_bytes"], s["receiver_status"])])
    else:
        _table("Replication", ["standby", "client_addr", "state", "lag_bytes", "replay_lag_s"],
               [(r["standby"], r["client_addr"], r["state"], r["lag_bytes"], r["replay_lag_seconds"])
                for r in report.replication], empty="no standby streams from this server")
    a = report.archiver
    _table("WAL archive", ["archive_mode", "archived", "last_archived_wal", "age_s", "failed"],
           [(a["archive_mode"], a["archived_count"], a["last_archived_wal"], a["age_seconds"], a["failed_count"])]
           if a else [], empty="archive_mode off")
    if report.citus is not None:
        c = report.citus
        click.echo(f"citus.stat_tenants_track = {c['stat_tenants_track']}")
        if c.get("note"):
            click.echo(f"note: {c['note']}")
        _table("Citus tenants (citus_stat_tenants, this period)", ["company_id", "queries", "reads", "cpu_s"],
               [(t["company_id"], t["queries"], t["reads"], t["cpu_seconds"]) for t in c["tenants"]])


@click.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Rows per ranking and per index list.")
@click.option("--statement-timeout", "timeout_ms", type=click.IntRange(100, 600_000), default=5000,
              show_default=True, metavar="MS", help="statement_timeout of every query top runs.")
@json_option()
@pass_ctx
def top(c: Context, limit: int, timeout_ms: int, as_json: bool) -> None:
    """Per-tenant observability, read-only: top tenants by messages, storage and query load,
    live sessions grouped by their label (`<service>:<company_id>`, docs/services.md),
    unused and duplicate indexes, replication lag and WAL-archive age, and on Citus the
    per-tenant statistics. Storage and messages come from the newest sample of the metrics
    job (`neurant-db jobs run metrics`); every query runs in one read-only transaction
    under --statement-timeout.

    \b
    Example:
      neurant-db top
      neurant-db top --limit 20 --json > top.json
    """
    with c.target().connect(purpose="top") as conn:
        report = collect_top(conn, limit=limit, statement_timeout_ms=timeout_ms)
    if as_json:
        emit(report.as_dict())
    else:
        _print(report)
