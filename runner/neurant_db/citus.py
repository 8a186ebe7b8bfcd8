"""Profile citus: the distribution plan of a database (private.citus_layout, created by
seeds/3990_citus_distribution.sql) and what a Citus server already holds of it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from .errors import NeurantError

QUALIFIED = "(select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace " \
    "where c.oid = {})"
LAYOUT = f"""
select l.position, {QUALIFIED.format('l.relation')}, l.placement, l.distribution_column::text,
       {QUALIFIED.format('l.colocate_with')}
  from private.citus_layout l
 order by l.position
"""
# What Citus holds (pg_dist_partition exists on a Citus server only).
CURRENT = f"""
select {QUALIFIED.format('p.logicalrelid')},
       case when p.partmethod = 'h' then 'distributed'
            when p.partmethod = 'n' and p.repmodel = 't' then 'reference'
            else 'local' end,
       case when p.partmethod = 'h' then pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) end
  from pg_catalog.pg_dist_partition p
"""


@dataclass(frozen=True)
class PlannedTable:
    position: int
    table: str
    placement: str
    distribution_column: str | None
    colocate_with: str | None
    # None: not a Citus server; True: Citus holds it as planned; False: not yet placed.
    distributed: bool | None = None
    # What Citus holds when it differs from the plan ("reference", "distributed by x", "local").
    conflict: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_citus(conn: psycopg.Connection) -> bool:
    """Whether the server holds Citus's placement catalog (read by name, like the distribution
    step does, so a test can stand in for it on plain PostgreSQL)."""
    return conn.execute("select to_regclass('pg_catalog.pg_dist_partition') is not null").fetchone() == (True,)


def read_plan(conn: psycopg.Connection) -> tuple[list[PlannedTable], bool]:
    """The layout in distribution order, with each table's state when the server runs Citus."""
    if conn.execute("select to_regclass('private.citus_layout') is null").fetchone() == (True,):
        raise NeurantError(
            "this database has no private.citus_layout: it was not migrated with profile citus",
            hint="migrate a database with --profile citus (or profile = \"citus\" in neurant-db.toml); "
            "docs/scale-out.md says how to move an existing one")
    rows = conn.execute(LAYOUT).fetchall()
    citus = is_citus(conn)
    current: dict[str, tuple[str, str | None]] = {}
    if citus:
        current = {rel: (placement, column) for rel, placement, column in conn.execute(CURRENT).fetchall()}
    plan = []
    for position, table, placement, column, colocate in rows:
        distributed: bool | None = None
        conflict = None
        if citus:
            held = current.get(table)
            distributed = held == (placement, column)
            if held is not None and not distributed:
                conflict = held[0] + (f" by {held[1]}" if held[1] else "")
        plan.append(PlannedTable(position, table, placement, column, colocate, distributed, conflict))
    return plan, citus


def format_plan(plan: list[PlannedTable], citus: bool) -> list[str]:
    """The plan as aligned text lines."""
    state = {None: "-", True: "yes", False: "no"}
    lines = [f"{'pos':>3}  {'table':<36} {'placement':<11} {'column':<11} {'colocate_with':<18} distributed"]
    for t in plan:
        done = (t.conflict and f"no (Citus holds it {t.conflict})") or state[t.distributed]
        lines.append(f"{t.position:>3}  {t.table:<36} {t.placement:<11} {t.distribution_column or '-':<11} "
                     f"{t.colocate_with or '-':<18} {done}")
    if not citus:
        lines.append("not a Citus server (no pg_dist_partition): the distribution step only notices; "
                     "on a Citus coordinator it places the tables in this order")
    return lines
