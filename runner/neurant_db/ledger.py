"""The runner's own record of applied migrations (neurant_meta.schema_migrations).

yoyo records a hash of the migration *id* only, after the migration committed,
on another connection. Our ledger row is written by the migration's own
transaction (the rendered SQL ends with the INSERT), so a migration and its
bookkeeping commit or vanish together, and it stores the checksum of the
rendered text so an edited applied migration shows up as drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

META_SCHEMA = "neurant_meta"
LEDGER = f"{META_SCHEMA}.schema_migrations"

BOOTSTRAP_SQL = f"""
create schema if not exists {META_SCHEMA};
comment on schema {META_SCHEMA} is
    'Bookkeeping of the neurant-db migration runner (ledger, yoyo tables). Not for applications.';
revoke all on schema {META_SCHEMA} from public;
create table if not exists {LEDGER} (
    version integer primary key,
    name text not null,
    checksum text not null check (checksum ~ '^[0-9a-f]{{64}}$'),
    applied_at timestamptz not null default now(),
    applied_by text not null default current_user,
    runner_version text not null
);
comment on table {LEDGER} is 'One row per applied migration, written in the same transaction as the migration itself.';
comment on column {LEDGER}.version is 'Global version number (the NNNN of NNNN_name.sql).';
comment on column {LEDGER}.name is 'Migration id: NNNN_name.';
comment on column {LEDGER}.checksum is 'sha256 of the rendered apply SQL; a different checksum today means drift.';
comment on column {LEDGER}.applied_at is 'When the migration committed.';
comment on column {LEDGER}.applied_by is 'Database role that applied it.';
comment on column {LEDGER}.runner_version is 'neurant-db version that applied it.';
alter table {LEDGER} add column if not exists rollback_checksum text
    check (rollback_checksum ~ '^[0-9a-f]{{64}}$');
comment on column {LEDGER}.rollback_checksum is
    'sha256 of the rendered rollback SQL at apply time: a rollback edited since shows as drift.';
"""


@dataclass(frozen=True)
class LedgerRow:
    version: int
    name: str
    checksum: str
    applied_at: datetime
    applied_by: str
    rollback_checksum: str | None = None


def bootstrap(conn: psycopg.Connection) -> None:
    """Create the ledger if missing (idempotent)."""
    with conn.transaction():
        conn.execute(BOOTSTRAP_SQL)


def ledger_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", (LEDGER,)).fetchone()
    return bool(row and row[0])


def read_ledger(conn: psycopg.Connection) -> dict[int, LedgerRow]:
    if not ledger_exists(conn):
        return {}
    rows = conn.execute(
        f"select version, name, checksum, applied_at, applied_by, rollback_checksum from {LEDGER} order by version"
    ).fetchall()
    return {r[0]: LedgerRow(*r) for r in rows}


def sql_literal(text: str) -> str:
    """A standard SQL string literal (standard_conforming_strings is on since PG 9.1)."""
    return "'" + text.replace("'", "''") + "'"
