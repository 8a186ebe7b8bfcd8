"""Per-tenant observability: what `neurant-db top` prints (docs/operations.md, "Per-tenant
observability: neurant-db top").

Everything is read in one read-only transaction bounded by `statement_timeout`:

- top tenants by messages, storage and query load: messages and storage from the newest
  sample of the metrics job in `public.system_metrics` (`tenant.rows`, `tenant.total_bytes`,
  `tenant.growth_bytes`, written by functions/4300's `private.collect_system_metrics`; `top`
  itself never scans a tenant table), query load from the live sessions labelled with the
  session convention of docs/services.md (`application_name` = `<service>:<company_id>`);
- live sessions grouped by that label;
- index usage: unused indexes (no scan since the statistics were reset, not backing a
  constraint) and duplicate ones (same table, access method and key columns as a prefix of
  another index's, neither partial nor on expressions, the shorter one not unique);
- replication lag per standby (`pg_stat_replication`) or, on a standby, the replay delay;
  the WAL archive's age (`pg_stat_archiver`) where anything is archived;
- on a Citus coordinator, Citus's per-tenant statistics (`citus_stat_tenants`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

# docs/services.md, "Labelling sessions": application_name = '<service>:<company_id>'
SESSION_LABEL = re.compile(
    r"^(?P<service>[A-Za-z0-9_.\-]{1,40}):(?P<company_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
SCHEMAS = ("public", "private", "archive")


def parse_label(application_name: str | None) -> tuple[str | None, str | None]:
    """(service, company_id) of a session labelled `<service>:<company_id>`, else (None, None)."""
    m = SESSION_LABEL.match(application_name or "")
    return (m["service"], m["company_id"].lower()) if m else (None, None)


@dataclass
class TopReport:
    as_of: datetime
    database: str
    in_recovery: bool
    stats_reset: datetime | None
    sample_at: datetime | None
    by_messages: list[dict[str, Any]] = field(default_factory=list)
    by_storage: list[dict[str, Any]] = field(default_factory=list)
    by_load: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    unused_indexes: list[dict[str, Any]] = field(default_factory=list)
    unused_index_count: int = 0
    duplicate_indexes: list[dict[str, Any]] = field(default_factory=list)
    replication: list[dict[str, Any]] = field(default_factory=list)
    standby: dict[str, Any] | None = None
    archiver: dict[str, Any] | None = None
    citus: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rows(conn: psycopg.Connection, query: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def _one(conn: psycopg.Connection, query: str, params: Any = None) -> dict[str, Any] | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


# The newest sample of the metrics job, one row per company.
TENANTS_SQL = """
with latest as (
  select max(recorded_at) as at from public.system_metrics where metric_name = 'tenant.total_bytes'
), s as (
  select m.metric_name, m.labels, m.value from public.system_metrics m, latest
   where m.recorded_at = latest.at
     and m.metric_name in ('tenant.total_bytes', 'tenant.growth_bytes', 'tenant.rows', 'tenant.row_bytes')
)
select c.id::text as company_id, c.name,
       coalesce((select s.value from s where s.metric_name = 'tenant.total_bytes'
                  and s.labels->>'company_id' = c.id::text), 0)::bigint as storage_bytes,
       coalesce((select s.value from s where s.metric_name = 'tenant.growth_bytes'
                  and s.labels->>'company_id' = c.id::text), 0)::bigint as growth_bytes,
       coalesce((select sum(s.value) from s where s.metric_name = 'tenant.row_bytes'
                  and s.labels->>'company_id' = c.id::text), 0)::bigint as row_bytes,
       coalesce((select sum(s.value) from s where s.metric_name = 'tenant.rows'
                  and s.labels->>'company_id' = c.id::text
                  and s.labels->>'table' in ('public.messages', 'archive.messages_archived')), 0)::bigint as messages
  from public.companies c
"""

SESSIONS_SQL = """
select a.pid, coalesce(a.application_name, '') as application_name, a.state, a.usename::text as role,
       extract(epoch from (clock_timestamp() - a.xact_start))::float8 as xact_seconds,
       extract(epoch from (clock_timestamp() - a.query_start))::float8 as query_seconds,
       left(a.query, 200) as query
  from pg_catalog.pg_stat_activity a
 where a.datname = current_database() and a.backend_type = 'client backend' and a.pid <> pg_backend_pid()
"""

UNUSED_SQL = """
select s.schemaname || '.' || s.relname as "table", s.schemaname || '.' || s.indexrelname as index,
       pg_catalog.pg_relation_size(s.indexrelid) as bytes, s.idx_scan as scans
  from pg_catalog.pg_stat_user_indexes s
  join pg_catalog.pg_index i on i.indexrelid = s.indexrelid
 where s.idx_scan = 0 and not i.indisunique and not i.indisprimary and i.indisvalid
   and s.schemaname = any(%(schemas)s)
   and not exists (select 1 from pg_catalog.pg_constraint k where k.conindid = s.indexrelid)
 order by pg_catalog.pg_relation_size(s.indexrelid) desc, 2
"""

# Key columns (and their operator classes and collations) as arrays in key order.
DUPLICATES_SQL = """
with ix as (
  select i.indexrelid, i.indrelid, i.indisunique, c.relam,
         (select array_agg(k.v order by k.o) from unnest(i.indkey::int2[]) with ordinality k(v, o)
           where k.o <= i.indnkeyatts) as cols,
         (select array_agg(k.v order by k.o) from unnest(i.indclass::oid[]) with ordinality k(v, o)
           where k.o <= i.indnkeyatts) as ops,
         (select array_agg(k.v order by k.o) from unnest(i.indcollation::oid[]) with ordinality k(v, o)
           where k.o <= i.indnkeyatts) as colls
    from pg_catalog.pg_index i
    join pg_catalog.pg_class c on c.oid = i.indexrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where n.nspname = any(%(schemas)s) and i.indexprs is null and i.indpred is null and i.indisvalid
)
select q.table_name as "table", q.index_name as index,
       array_agg(q.covering order by q.covering) as covered_by, q.columns, q.bytes
  from (select format('%%I.%%I', tn.nspname, tc.relname) as table_name,
               format('%%I.%%I', n.nspname, ac.relname) as index_name,
               format('%%I.%%I', n.nspname, bc.relname) as covering,
               (select string_agg(quote_ident(att.attname), ', ' order by k.o)
                  from unnest(a.cols) with ordinality k(v, o)
                  join pg_catalog.pg_attribute att on att.attrelid = a.indrelid and att.attnum = k.v) as columns,
               pg_catalog.pg_relation_size(a.indexrelid) as bytes
          from ix a
          join ix b on b.indrelid = a.indrelid and b.indexrelid <> a.indexrelid and b.relam = a.relam
          join pg_catalog.pg_class ac on ac.oid = a.indexrelid
          join pg_catalog.pg_namespace n on n.oid = ac.relnamespace
          join pg_catalog.pg_class bc on bc.oid = b.indexrelid
          join pg_catalog.pg_class tc on tc.oid = a.indrelid
          join pg_catalog.pg_namespace tn on tn.oid = tc.relnamespace
         where not a.indisunique
           and cardinality(a.cols) <= cardinality(b.cols)
           and b.cols[1:cardinality(a.cols)] = a.cols
           and b.ops[1:cardinality(a.cols)] = a.ops
           and b.colls[1:cardinality(a.cols)] = a.colls
           and (cardinality(a.cols) < cardinality(b.cols) or b.indisunique or a.indexrelid > b.indexrelid)) q
 group by 1, 2, 4, 5
 order by 1, 2
"""

REPLICATION_SQL = """
select coalesce(r.application_name, '') as standby, coalesce(r.client_addr::text, 'local') as client_addr,
       r.state, r.sync_state,
       case when r.replay_lsn is not null
            then pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn)::bigint end as lag_bytes,
       extract(epoch from r.write_lag)::float8 as write_lag_seconds,
       extract(epoch from r.flush_lag)::float8 as flush_lag_seconds,
       extract(epoch from r.replay_lag)::float8 as replay_lag_seconds
  from pg_catalog.pg_stat_replication r
 order by 1, 2
"""

STANDBY_SQL = """
select extract(epoch from (clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp()))::float8
         as replay_delay_seconds,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())::bigint
         as unreplayed_bytes,
       (select w.status from pg_catalog.pg_stat_wal_receiver w) as receiver_status
"""

ARCHIVER_SQL = """
select (select setting from pg_catalog.pg_settings where name = 'archive_mode') as archive_mode,
       a.archived_count, a.last_archived_wal, a.last_archived_time,
       extract(epoch from (clock_timestamp() - a.last_archived_time))::float8 as age_seconds,
       a.failed_count, a.last_failed_wal, a.last_failed_time
  from pg_catalog.pg_stat_archiver a
"""


def _citus(conn: psycopg.Connection, limit: int) -> dict[str, Any] | None:
    """Citus's per-tenant statistics where the extension is installed (else None), summed over
    the nodes (the view has a row per node that saw the tenant)."""
    if _one(conn, "select 1 as x from pg_catalog.pg_extension where extname = 'citus'") is None:
        return None
    track = _one(conn, "select current_setting('citus.stat_tenants_track', true) as v")
    out: dict[str, Any] = {"stat_tenants_track": track["v"] if track else None, "tenants": []}
    if out["stat_tenants_track"] in (None, "none"):
        out["note"] = ("citus.stat_tenants_track is 'none': set it to 'all' (postgresql.conf of every node, "
                       "docs/operations.md) for per-tenant counts")
        return out
    with conn.transaction():  # a savepoint: a Citus without the view leaves the report intact
        out["tenants"] = _rows(conn, """
            select tenant_attribute as company_id, sum(query_count_in_this_period)::bigint as queries,
                   sum(read_count_in_this_period)::bigint as reads,
                   sum(cpu_usage_in_this_period)::float8 as cpu_seconds,
                   sum(query_count_in_last_period)::bigint as queries_last_period
              from pg_catalog.citus_stat_tenants
             group by tenant_attribute
             order by 2 desc, 4 desc, 1
             limit %(limit)s""", {"limit": limit})
    return out


def _group_sessions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        label = r["application_name"]
        service, company = parse_label(label)
        g = groups.setdefault(label, {
            "label": label, "service": service, "company_id": company, "sessions": 0, "active": 0,
            "idle_in_transaction": 0, "active_seconds": 0.0, "longest_xact_seconds": 0.0, "longest_query": None})
        g["sessions"] += 1
        if r["state"] == "active":
            g["active"] += 1
            g["active_seconds"] += r["query_seconds"] or 0.0
        elif (r["state"] or "").startswith("idle in transaction"):
            g["idle_in_transaction"] += 1
        if (r["xact_seconds"] or 0.0) >= g["longest_xact_seconds"] and r["xact_seconds"] is not None:
            g["longest_xact_seconds"] = r["xact_seconds"]
            g["longest_query"] = r["query"]
    return sorted(groups.values(), key=lambda g: (-g["active_seconds"], -g["sessions"], g["label"]))


def collect_top(conn: psycopg.Connection, *, limit: int = 10, statement_timeout_ms: int = 5000) -> TopReport:
    """Everything `neurant-db top` shows, read in one read-only transaction whose every
    statement is bounded by `statement_timeout_ms`. `conn` must be in autocommit mode."""
    params = {"schemas": list(SCHEMAS), "limit": limit}
    with conn.transaction():
        conn.execute("set transaction read only")
        conn.execute("select pg_catalog.set_config('statement_timeout', %s, true)", (f"{int(statement_timeout_ms)}ms",))
        head = _one(conn, """select clock_timestamp() as as_of, current_database() as database,
                                    pg_catalog.pg_is_in_recovery() as in_recovery,
                                    (select d.stats_reset from pg_catalog.pg_stat_database d
                                      where d.datname = current_database()) as stats_reset""")
        assert head is not None
        report = TopReport(as_of=head["as_of"], database=head["database"], in_recovery=head["in_recovery"],
                           stats_reset=head["stats_reset"], sample_at=None)
        sample = _one(conn, "select max(recorded_at) as at from public.system_metrics "
                            "where metric_name = 'tenant.total_bytes'")
        report.sample_at = sample["at"] if sample else None
        if report.sample_at is None:
            report.notes.append("no per-tenant sample in public.system_metrics yet: run `neurant-db jobs run metrics`")
        tenants = _rows(conn, TENANTS_SQL) if report.sample_at is not None else []
        sessions = _rows(conn, SESSIONS_SQL)
        report.sessions = _group_sessions(sessions)
        load: dict[str, dict[str, Any]] = {}
        for g in report.sessions:
            if g["company_id"] is None:
                continue
            t = load.setdefault(g["company_id"], {"sessions": 0, "active": 0, "active_seconds": 0.0})
            t["sessions"] += g["sessions"]
            t["active"] += g["active"]
            t["active_seconds"] += g["active_seconds"]
        named = _rows(conn, "select id::text as company_id, name from public.companies where id::text = any(%s)",
                      (list(load),))
        names = {r["company_id"]: r["name"] for r in named}
        report.by_messages = sorted((t for t in tenants if t["messages"]),
                                    key=lambda t: (-t["messages"], t["company_id"]))[:limit]
        report.by_storage = sorted(tenants, key=lambda t: (-t["storage_bytes"], t["company_id"]))[:limit]
        report.by_load = sorted(({"company_id": cid, "name": names.get(cid), **v} for cid, v in load.items()),
                                key=lambda t: (-t["active_seconds"], -t["sessions"], t["company_id"]))[:limit]
        unused = _rows(conn, UNUSED_SQL, params)
        report.unused_index_count = len(unused)
        report.unused_indexes = unused[:limit]
        report.duplicate_indexes = _rows(conn, DUPLICATES_SQL, params)
        if report.in_recovery:
            report.standby = _one(conn, STANDBY_SQL)
        else:
            report.replication = _rows(conn, REPLICATION_SQL)
        arch = _one(conn, ARCHIVER_SQL)
        if arch and (arch["archive_mode"] != "off" or arch["archived_count"] or arch["failed_count"]):
            report.archiver = arch
        report.citus = _citus(conn, limit)
    return report
