"""Where each table lives on Citus: distributed (by which column), reference, or local.

The Citus rules of `neurant-db doctor --profile citus` (doctor_citus.py) need the placement
of every table. It is read from the first source that exists:

1. `pg_dist_partition` (a real Citus server): partmethod 'h' is distributed by the column of
   its partkey, 'n' with repmodel 't' a reference table; 'n' otherwise is a Citus local table
   (coordinator only), reported as local;
2. `private.citus_layout` (the plan the citus render profile ships, one row per table:
   relation, placement 'reference'|'distributed', distribution_column set iff distributed,
   colocate_with, position = order of distribution);
3. the default plan: a table with a company_id column is distributed by company_id,
   public.companies by id, every other table of the application schemas is a reference
   table.

Every other table is local (it stays on the coordinator): a table of the application
schemas that the source does not name is marked "not planned" (doctor warns about it),
tables of other schemas and the layout table itself "outside the plan".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

APPLICATION_SCHEMAS = ("public", "private", "auth", "archive")
TENANT_KEY = "company_id"
TENANT_ROOT = "public.companies"
LAYOUT_TABLE = "private.citus_layout"
PLACEMENTS = ("distributed", "reference", "local")


@dataclass(frozen=True)
class Placement:
    oid: int
    relation: str  # schema.table
    placement: str  # distributed | reference | local
    distribution_column: str | None
    colocate_with: str | None
    position: int | None
    source: str  # pg_dist_partition | private.citus_layout | default | not planned | outside the plan

    @property
    def sharded(self) -> bool:
        """Distributed or reference: its rows live in shards on the workers."""
        return self.placement in ("distributed", "reference")

    def describe(self) -> str:
        if self.placement == "distributed":
            colocated = f", colocated with {self.colocate_with}" if self.colocate_with else ""
            return f"distributed by {self.distribution_column}{colocated}"
        if self.placement == "reference":
            return "reference table (a copy on every node)"
        return "local table (coordinator only)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


TABLES = """
select c.oid, n.nspname || '.' || c.relname,
       exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = %s
               and not a.attisdropped),
       n.nspname = any(%s)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'
  and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
order by 2
"""

# The partkey is the distribution column's Var node as text ({VAR :varno 1 :varattno N ...}).
# A colocation group is named by the tenant root when it is in the group (else by its oldest
# table: audit_logs is older than companies, and "colocated with audit_logs" misleads).
FROM_CITUS = """
select p.logicalrelid::oid, p.partmethod::text, p.repmodel::text,
       (select a.attname::text from pg_attribute a where a.attrelid = p.logicalrelid
          and a.attnum = substring(p.partkey from ':varattno ([0-9]+)')::int),
       (select q.logicalrelid::oid::bigint from pg_catalog.pg_dist_partition q
         where q.colocationid = p.colocationid and q.colocationid <> 0 and q.partmethod = 'h'
         order by q.logicalrelid = to_regclass(%s) desc, q.logicalrelid::oid limit 1)
from pg_catalog.pg_dist_partition p
"""

FROM_LAYOUT = """
select l.relation::oid, l.placement, l.distribution_column::text, l.colocate_with::oid, l.position
from private.citus_layout l
"""


def layout_source(conn: psycopg.Connection) -> str:
    """Which source table_layout reads on this server."""
    row = conn.execute("select to_regclass('pg_catalog.pg_dist_partition') is not null, "
                       "to_regclass(%s) is not null", (LAYOUT_TABLE,)).fetchone()
    if row and row[0]:
        return "pg_dist_partition"
    if row and row[1]:
        return LAYOUT_TABLE
    return "default"


def table_layout(conn: psycopg.Connection) -> list[Placement]:
    """The placement of every table of the application schemas, in plan order (position,
    then name): from pg_dist_partition, else private.citus_layout, else the default plan."""
    tables: list[tuple[Any, ...]] = conn.execute(TABLES, (TENANT_KEY, list(APPLICATION_SCHEMAS))).fetchall()
    names = {oid: name for oid, name, _key, _app in tables}
    source = layout_source(conn)
    planned: dict[int, tuple[str, str | None, str | None, int | None]] = {}
    if source == "pg_dist_partition":
        for oid, method, repmodel, column, group in conn.execute(FROM_CITUS, (TENANT_ROOT,)).fetchall():
            if method == "h":
                root = names.get(group) if group and group != oid else None
                planned[oid] = ("distributed", column, root, None)
            elif method == "n" and repmodel == "t":
                planned[oid] = ("reference", None, None, None)
    elif source == LAYOUT_TABLE:
        for oid, placement, column, colocate, position in conn.execute(FROM_LAYOUT).fetchall():
            other = names.get(colocate) if colocate else None
            planned[oid] = (placement, column if placement == "distributed" else None, other, position)
    else:  # reference tables first, then the tenant root, then the tables colocated with it
        ordered = sorted((t for t in tables if t[3] and t[1] != LAYOUT_TABLE),
                         key=lambda t: (1 if t[1] == TENANT_ROOT else 2 if t[2] else 0, t[1]))
        for position, (oid, name, has_key, _app) in enumerate(ordered, start=1):
            if name == TENANT_ROOT:
                planned[oid] = ("distributed", "id", None, position)
            elif has_key:
                planned[oid] = ("distributed", TENANT_KEY, TENANT_ROOT, position)
            else:
                planned[oid] = ("reference", None, None, position)
    layout = [
        Placement(oid, name, *planned.get(oid, ("local", None, None, None)),
                  source=source if oid in planned else "not planned" if app and name != LAYOUT_TABLE
                  else "outside the plan")
        for oid, name, _key, app in tables
    ]
    return sorted(layout, key=lambda p: (p.position is None, p.position or 0, p.relation))


def placements_by_oid(conn: psycopg.Connection) -> dict[int, Placement]:
    return {p.oid: p for p in table_layout(conn)}
