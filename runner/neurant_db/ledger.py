"""The runner's own record of applied migrations (neurant_meta.schema_migrations).

yoyo records a hash of the migration *id* only, after the migration committed,
on another connection. Our ledger row is written by the migration's own
transaction (the rendered SQL ends with the INSERT), so a migration and its
bookkeeping commit or vanish together, and it stores the checksum of the
rendered text so an edited applied migration shows up as drift.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from . import __version__
from .errors import BadArgument
from .render import Migration
from .settings import Settings

META_SCHEMA = "neurant_meta"
LEDGER = f"{META_SCHEMA}.schema_migrations"
HISTORY = f"{META_SCHEMA}.ledger_history"
KINDS = ("applied", "baselined")

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
alter table {LEDGER} add column if not exists settings jsonb;
comment on column {LEDGER}.settings is
    'The render settings the migration was rendered with (profile, embedding_dimensions, ...): '
    'a checksum change explained by them is reported as a settings change, not an edited file.';
alter table {LEDGER} add column if not exists kind text not null default 'applied'
    check (kind in ('applied', 'baselined'));
comment on column {LEDGER}.kind is
    'applied: run by the runner; baselined: marked applied by `neurant-db baseline` without running it.';
create table if not exists {HISTORY} (
    id bigint generated always as identity primary key,
    version integer not null,
    action text not null check (action in ('repair', 'baseline')),
    old_checksum text,
    new_checksum text not null,
    old_settings jsonb,
    new_settings jsonb,
    reason text not null check (btrim(reason) <> ''),
    performed_by text not null default current_user,
    performed_at timestamptz not null default now(),
    runner_version text not null
);
comment on table {HISTORY} is
    'Every change the runner made to the ledger other than apply/rollback: repairs and baselines.';
comment on column {HISTORY}.id is 'Order of the changes.';
comment on column {HISTORY}.version is 'The migration version whose ledger row changed.';
comment on column {HISTORY}.action is 'repair: a drifted checksum accepted; baseline: marked applied without running.';
comment on column {HISTORY}.old_checksum is 'The ledger checksum before the change (null for a baseline).';
comment on column {HISTORY}.new_checksum is 'The ledger checksum after the change.';
comment on column {HISTORY}.old_settings is 'The recorded render settings before the change.';
comment on column {HISTORY}.new_settings is 'The recorded render settings after the change.';
comment on column {HISTORY}.reason is 'Why, as given with --reason.';
comment on column {HISTORY}.performed_by is 'Database role that made the change.';
comment on column {HISTORY}.performed_at is 'When the change committed.';
comment on column {HISTORY}.runner_version is 'neurant-db version that made the change.';
revoke all on table {HISTORY} from public;
"""


@dataclass(frozen=True)
class LedgerRow:
    version: int
    name: str
    checksum: str
    applied_at: datetime
    applied_by: str
    rollback_checksum: str | None = None
    settings: dict[str, Any] | None = None
    kind: str = "applied"


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger records about one migration rendered with given settings."""

    version: int
    name: str
    checksum: str
    rollback_checksum: str
    settings: dict[str, Any]


def ledger_entry(m: Migration, settings: Settings) -> LedgerEntry:
    """The ledger's record of m rendered with settings (the transactional and the
    no-transaction path write the same row)."""
    return LedgerEntry(m.version, m.id, m.checksum, m.rollback_checksum, settings.template_context())


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
        f"select version, name, checksum, applied_at, applied_by, rollback_checksum, "
        f"to_jsonb(t) -> 'settings', coalesce(to_jsonb(t) ->> 'kind', 'applied') "
        f"from {LEDGER} t order by version"
    ).fetchall()
    return {r[0]: LedgerRow(*r) for r in rows}


def sql_literal(text: str) -> str:
    """A standard SQL string literal (standard_conforming_strings is on since PG 9.1)."""
    return "'" + text.replace("'", "''") + "'"


def settings_literal(settings: dict[str, Any]) -> str:
    return sql_literal(json.dumps(settings, sort_keys=True)) + "::jsonb"


def record_sql(entry: LedgerEntry, kind: str = "applied") -> str:
    """The INSERT that records `entry` (ends an apply, inside the migration's transaction)."""
    assert kind in KINDS
    return (
        f"insert into {LEDGER} (version, name, checksum, rollback_checksum, settings, kind, "
        f"runner_version) values ({entry.version}, {sql_literal(entry.name)}, "
        f"{sql_literal(entry.checksum)}, {sql_literal(entry.rollback_checksum)}, "
        f"{settings_literal(entry.settings)}, {sql_literal(kind)}, {sql_literal(__version__)});\n"
    )


def forget_sql(version: int) -> str:
    """The DELETE that ends a rollback, inside the rollback's transaction."""
    return f"delete from {LEDGER} where version = {version};\n"


def ledger_row_count(conn: psycopg.Connection) -> int:
    if not ledger_exists(conn):
        return 0
    row = conn.execute(f"select count(*) from {LEDGER}").fetchone()
    return int(row[0]) if row else 0


def repair_rows(conn: psycopg.Connection, entries: Iterable[LedgerEntry], reason: str) -> None:
    """Accept the current checksums (and settings) of `entries` in one transaction,
    keeping the old values in the history."""
    with conn.transaction():
        conn.execute(BOOTSTRAP_SQL)
        for e in entries:
            conn.execute(
                f"insert into {HISTORY} (version, action, old_checksum, new_checksum, old_settings, "
                "new_settings, reason, runner_version) "
                f"select version, 'repair', checksum, %s, settings, %s::jsonb, %s, %s from {LEDGER} "
                "where version = %s",
                (e.checksum, json.dumps(e.settings, sort_keys=True), reason, __version__, e.version))
            conn.execute(
                f"update {LEDGER} set checksum = %s, rollback_checksum = %s, settings = %s::jsonb "
                "where version = %s",
                (e.checksum, e.rollback_checksum, json.dumps(e.settings, sort_keys=True), e.version))


def baseline_rows(conn: psycopg.Connection, entries: Iterable[LedgerEntry], reason: str) -> None:
    """Mark `entries` applied without running them (kind 'baselined'), with history rows.
    Refuses (raises) when the ledger already has rows: checked again under the lock."""
    with conn.transaction():
        conn.execute(BOOTSTRAP_SQL)
        conn.execute(f"lock table {LEDGER} in exclusive mode")
        row = conn.execute(f"select count(*) from {LEDGER}").fetchone()
        if row and row[0]:
            raise BadArgument("the database already has a migration ledger with rows: nothing to baseline",
                              hint="baseline adopts a database the runner never migrated; see `neurant-db status`")
        for e in entries:
            conn.execute(record_sql(e, "baselined"))
            conn.execute(
                f"insert into {HISTORY} (version, action, new_checksum, new_settings, reason, "
                "runner_version) values (%s, 'baseline', %s, %s::jsonb, %s, %s)",
                (e.version, e.checksum, json.dumps(e.settings, sort_keys=True), reason, __version__))


def history(conn: psycopg.Connection) -> list[dict[str, Any]]:
    if conn.execute("select to_regclass(%s)", (HISTORY,)).fetchone() == (None,):
        return []
    cur = conn.execute(
        f"select id, version, action, old_checksum, new_checksum, old_settings, new_settings, "
        f"reason, performed_by, performed_at from {HISTORY} order by id")
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
