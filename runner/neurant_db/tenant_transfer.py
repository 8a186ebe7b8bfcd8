"""Tenant export, import and delete (GDPR Art. 20, a dedicated-tenant move): `neurant-db tenant`.

Export: one REPEATABLE READ, READ ONLY transaction (one snapshot) copies every tenant table
of the table registry (schema/_tables.toml: scope root or tenant, live and archive, on the
database's profile) filtered by the tenant key, with COPY ... TO STDOUT in text format,
ordered by primary key, one file per table; plus the rows of auth.users the tenant
references (its members' identities, its creator), the private.cold_exports rows whose
export holds rows of the company and a copy of those exports' manifests; and manifest.json
(columns, row counts and sha256 per file, the schema version, the profile, the time).
Text COPY, not binary: the files are the database's own output format, portable across
server versions, architectures and profiles (vector, jsonb and enum columns round-trip by
their input functions, which check them again on the target), readable with any tool, and
byte-identical for identical rows, so one sha256 compares source, file and target.

Import: the files are verified against the manifest first (a tampered or missing file is
refused), the target must have every migration the snapshot had (a snapshot from a newer
schema is refused), then one transaction loads the tables in registry order (a referenced
table before its referencing ones) with COPY ... FROM STDIN: every constraint, foreign key,
tenant guard and before-row rule of the target runs. What does not run is the bookkeeping
the snapshot already holds (functions/4400: counters, usage, conversation activity,
escalations, audit rows, chatbot visibility), through the transaction-local import mode
only the owner's session may set. Before the commit, in the same transaction, every table
is copied out again and its count and sha256 compared with the manifest. Any failure rolls
the whole import back.

Delete: only against a verified export (the manifest's hashes recomputed on the live data in
one snapshot: nothing changed since), then one `delete from public.companies` (the foreign
keys cascade); an active legal hold refuses it (companies_legal_hold). The audit trail
stays (it outlives its company by design), and so do the identities of auth.users.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from . import __version__
from .cold_storage import MANIFEST as COLD_MANIFEST
from .database import DatabaseTarget
from .erasure import read_source, replay_entries, summarize
from .errors import NeurantError
from .ledger import read_ledger
from .private_files import private_dir, private_file
from .releases import newest_release
from .render import discover
from .table_registry import Registry, TableEntry, load

FORMAT = "neurant-db tenant export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
IMPORT_SETTING = "neurant.tenant_import"
CHUNK = 1 << 20
ANALYZE_ROWS = 1000  # a loaded table this large is analyzed before the next one loads
# Global rows a tenant needs: the identities its rows reference (auth.users, by the
# columns below). Subscription plans and chatbot templates are seeds of every database;
# the foreign keys refuse an import that names one the target lacks.
IDENTITY_REFS = (("public.users", "auth_user_id"), ("public.companies", "created_by_auth_user_id"))


class TenantTransferError(NeurantError):
    """A tenant export, import or delete refused or failed (nothing half-done)."""

    exit_code = 1


@dataclass(frozen=True)
class TableCopy:
    name: str  # schema.table
    key: str  # the tenant key column (id for companies, company_id elsewhere)
    columns: tuple[str, ...]  # every stored column (generated ones are recomputed)
    order: tuple[str, ...]  # the primary key: the files' row order

    @property
    def file(self) -> str:
        return f"{self.name}.tsv"


def _qualified(name: str) -> sql.Composed:
    schema, rel = name.split(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(rel))


def _ident_list(cols: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in cols)


def profile_of(conn: psycopg.Connection) -> str:
    """The profile the database was migrated with (the ledger's settings)."""
    ledger = read_ledger(conn)
    for row in reversed(list(ledger.values())):
        profile = (row.settings or {}).get("profile")
        if profile:
            return str(profile)
    return "vanilla"


def tenant_entries(registry: Registry, profile: str) -> list[TableEntry]:
    """Every table whose rows belong to one company (root and tenant scopes) on `profile`,
    in registry order (referenced before referencing): what an export copies."""
    return [e for e in registry.entries if e.tenant and e.on(profile)]


def _table_copy(conn: psycopg.Connection, entry: TableEntry) -> TableCopy | None:
    rows = conn.execute(
        "select a.attname, a.attgenerated <> '' from pg_catalog.pg_attribute a "
        "where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (entry.name,)).fetchall()
    if not rows:
        return None
    pk = conn.execute(
        "select a.attname from pg_catalog.pg_index i "
        "cross join lateral unnest(i.indkey::int2[]) with ordinality k(attnum, ord) "
        "join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
        "where i.indrelid = to_regclass(%s) and i.indisprimary order by k.ord", (entry.name,)).fetchall()
    columns = tuple(str(r[0]) for r in rows if not r[1])
    return TableCopy(entry.name, "id" if entry.scope == "root" else "company_id", columns,
                     tuple(str(r[0]) for r in pk) or columns)


def _select(table: TableCopy, columns: tuple[str, ...] | None = None) -> sql.Composed:
    return sql.SQL("select {} from {} where {} = %s order by {}").format(
        _ident_list(columns or table.columns), _qualified(table.name), sql.Identifier(table.key),
        _ident_list(table.order))


def _copy_out(conn: psycopg.Connection, query: sql.Composed, params: tuple[Any, ...],
              sink: IO[bytes] | None) -> tuple[int, str]:
    """COPY (query) TO STDOUT (text): (rows, sha256 of the bytes), written to `sink` if given."""
    digest = hashlib.sha256()
    rows = 0
    with conn.cursor() as cur, cur.copy(sql.SQL("copy ({}) to stdout").format(query), params) as copy:
        for data in copy:
            chunk = bytes(data)
            digest.update(chunk)
            rows += chunk.count(b"\n")
            if sink is not None:
                sink.write(chunk)
    return rows, digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _schema_version(conn: psycopg.Connection) -> dict[str, Any]:
    ledger = read_ledger(conn)
    release = newest_release()
    return {"applied": sorted(ledger), "newest_migration": max(ledger) if ledger else 0,
            "newest_release": release.version if release else None, "package_version": __version__}


def _cold_exports(conn: psycopg.Connection, company: str, out: Path) -> list[dict[str, Any]]:
    """The cold exports holding rows of `company`: their ledger rows, and their manifests
    copied (the files stay where they are: they hold other tenants' rows too)."""
    found: list[dict[str, Any]] = []
    rows = conn.execute("select id::text, location, manifest_sha256, row_counts, status, created_at::text, "
                        "restored_at::text from private.cold_exports order by created_at, id").fetchall()
    for export_id, location, manifest_sha256, row_counts, status, created_at, restored_at in rows:
        manifest_path = Path(location) / COLD_MANIFEST
        entry = {"id": export_id, "location": location, "manifest_sha256": manifest_sha256, "row_counts": row_counts,
                 "status": status, "created_at": created_at, "restored_at": restored_at}
        if not manifest_path.is_file():
            entry["manifest"] = None  # unreachable from here: listed, not copied
            found.append(entry)
            continue
        cold = json.loads(manifest_path.read_text(encoding="utf-8"))
        if company not in cold.get("companies", []):
            continue
        copy = out / "cold" / f"{export_id}.manifest.json"
        private_dir(copy.parent)
        with private_file(copy) as f:
            f.write(manifest_path.read_bytes())
        entry["manifest"] = {"file": f"cold/{copy.name}", "sha256": sha256_file(copy)}
        found.append(entry)
    return found


def _identities() -> sql.Composed:
    """The auth.users ids the tenant's rows reference (one %s per reference: the company)."""
    return sql.SQL(" union ").join(
        sql.SQL("select {} from {} where {} = %s").format(
            sql.Identifier(col), _qualified(table),
            sql.Identifier("id" if table == "public.companies" else "company_id"))
        for table, col in IDENTITY_REFS)


def export_tenant(target: DatabaseTarget, company: str, out_dir: Path) -> dict[str, Any]:
    """Write the snapshot of `company` into `out_dir` (new or empty); returns the manifest."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise TenantTransferError(f"{out_dir} is not empty", hint="Export into a new or empty directory.")
    private_dir(out_dir)  # the snapshot holds end users' messages, identities and credentials
    out_dir.chmod(0o700)  # an empty folder given by the caller too
    conn = _owner_connection(target, "tenant export")
    try:
        conn.execute("begin isolation level repeatable read, read only")
        if conn.execute("select 1 from public.companies where id = %s", (company,)).fetchone() is None:
            raise TenantTransferError(f"company {company} does not exist")
        profile = profile_of(conn)
        manifest: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "company": company,
            "exported_at": datetime.now(UTC).isoformat(), "profile": profile,
            "schema": _schema_version(conn), "tables": {}, "global": {}, "cold_exports": []}
        for entry in tenant_entries(load(), profile):
            table = _table_copy(conn, entry)
            if table is None:
                raise TenantTransferError(f"{entry.name} is in the table registry but not in the database",
                                          hint="Migrate the database to the end first.")
            path = out_dir / table.file
            with private_file(path) as f:
                rows, digest = _copy_out(conn, _select(table), (company,), f)
                f.flush()
                os.fsync(f.fileno())
            manifest["tables"][table.name] = {"file": table.file, "key": table.key, "columns": list(table.columns),
                                              "order": list(table.order), "rows": rows, "sha256": digest}
        auth = _table_copy(conn, load()["auth.users"]) if conn.execute(
            "select to_regclass('auth.users')").fetchone() != (None,) else None
        if auth is not None:
            query = sql.SQL("select {} from auth.users where id in (select * from ({}) r) order by id").format(
                _ident_list(auth.columns), _identities())
            path = out_dir / auth.file
            with private_file(path) as f:
                rows, digest = _copy_out(conn, query, (company,) * len(IDENTITY_REFS), f)
            manifest["global"]["auth.users"] = {
                "file": auth.file, "columns": list(auth.columns), "rows": rows, "sha256": digest,
                "referenced_by": [f"{t}.{c}" for t, c in IDENTITY_REFS]}
        manifest["cold_exports"] = _cold_exports(conn, company, out_dir)
        conn.execute("commit")
    except psycopg.Error as exc:
        raise TenantTransferError(f"tenant export: {exc.diag.message_primary or exc}",
                                  hint=exc.diag.message_hint) from None
    finally:
        conn.close()
    with private_file(out_dir / MANIFEST) as f:
        f.write((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return manifest


def _owner_connection(target: DatabaseTarget, purpose: str) -> psycopg.Connection:
    """An autocommit connection of a role that reads every tenant's rows (the owner: the
    superuser, or a role bypassing RLS); the import mode needs the owner's login anyway."""
    conn = target.connect(autocommit=True, purpose=purpose)
    conn.execute("set search_path = pg_catalog, pg_temp")
    row = conn.execute("select rolsuper or rolbypassrls from pg_roles where rolname = current_user").fetchone()
    if not (row and row[0]):
        conn.close()
        raise TenantTransferError("the database user neither bypasses row level security nor is a superuser",
                                  hint="Run neurant-db tenant as the database owner.")
    return conn


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TenantTransferError(f"{path} is missing: not a tenant export") from None
    except json.JSONDecodeError as exc:
        raise TenantTransferError(f"{path} is not valid JSON ({exc.msg})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise TenantTransferError(f"{path}: not a {FORMAT} of version {FORMAT_VERSION}")
    return manifest


def verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Every file of the manifest present, with its sha256: else the export was tampered with."""
    entries = list(manifest["tables"].items()) + list(manifest.get("global", {}).items())
    entries += [(f"cold export {e['id']}", e["manifest"])
                for e in manifest.get("cold_exports", []) if e.get("manifest")]
    for name, entry in entries:
        path = directory / entry["file"]
        if not path.is_file():
            raise TenantTransferError(f"{name}: file {entry['file']} is missing from the export",
                                      hint="Export the tenant again; an incomplete export is never imported.")
        if sha256_file(path) != entry["sha256"]:
            raise TenantTransferError(f"{name}: {entry['file']} does not match its sha256 in the manifest "
                                      "(tampered or damaged)",
                                      hint="Export the tenant again; a changed file is never imported.")


def _check_schema(conn: psycopg.Connection, manifest: dict[str, Any]) -> None:
    """Every migration the snapshot had must be applied here, except those of another
    profile only (the Citus distribution steps on a vanilla target, say)."""
    applied = set(read_ledger(conn))
    profile = profile_of(conn)
    other_profiles = {s.version for s in discover() if s.only_profile is not None and s.only_profile != profile}
    theirs = set(manifest["schema"]["applied"]) - other_profiles
    newer = sorted(theirs - applied)
    if newer:
        raise TenantTransferError(
            f"the snapshot comes from a newer schema: migrations {', '.join(map(str, newer[:5]))}"
            f"{' ...' if len(newer) > 5 else ''} are applied there, not here "
            f"(snapshot {manifest['schema']['newest_migration']}, this database {max(applied) if applied else 0})",
            hint="Migrate this database first (neurant-db migrate), then import.")


@dataclass
class ImportPlan:
    load: list[tuple[TableCopy, dict[str, Any]]]  # target table, manifest entry
    skipped: list[str]  # snapshot tables the target's profile does not have
    derived: list[str]  # target tables the snapshot lacks, filled from other tables


def _plan(conn: psycopg.Connection, manifest: dict[str, Any]) -> ImportPlan:
    registry = load()
    profile = profile_of(conn)
    snapshot_version = int(manifest["schema"]["newest_migration"])
    tables: dict[str, Any] = manifest["tables"]
    plan = ImportPlan([], [], [])
    theirs = set(manifest["schema"]["applied"])
    for entry in tenant_entries(registry, manifest["profile"]):
        had = entry.since is None or entry.since in theirs or entry.since <= snapshot_version
        if entry.name not in tables and had:
            raise TenantTransferError(f"{entry.name} is missing from the manifest (the snapshot's schema has it)",
                                      hint="Export the tenant again; an incomplete export is never imported.")
    for entry in tenant_entries(registry, profile):
        if entry.name not in tables:
            if entry.name in (MEMBERSHIPS, VISIBILITY):
                plan.derived.append(entry.name)
            continue  # created after the snapshot's schema: no rows to bring
        table = _table_copy(conn, entry)
        if table is None:
            raise TenantTransferError(f"{entry.name} is missing from this database",
                                      hint="Migrate it to the end first.")
        missing = [c for c in tables[entry.name]["columns"] if c not in table.columns]
        if missing:
            raise TenantTransferError(f"{entry.name}: columns {', '.join(missing)} of the snapshot do not exist here")
        plan.load.append((table, tables[entry.name]))
    # a hold names a conversation live or archived (legal_holds_check_conversation, no
    # foreign key): loaded once the archive is
    plan.load.sort(key=lambda item: item[0].name in LOAD_LAST)
    ours = {e.name for e in tenant_entries(registry, profile)}
    unknown = [name for name in tables if registry.get(name) is None or not registry[name].tenant]
    if unknown:
        raise TenantTransferError(f"the manifest names tables that are no tenant table here: {', '.join(unknown)}",
                                  hint="Only exports written by neurant-db tenant export are imported.")
    plan.skipped = [name for name in tables if name not in ours]  # another profile's own tables
    return plan


LOAD_LAST = ("public.legal_holds",)
# Profile citus keeps the membership lookup the policies read from any shard (schema/0150):
# written from the users rows it mirrors when the snapshot (another profile) has none.
MEMBERSHIPS = "private.memberships"
# Profiles vanilla and supabase keep each member's visible chatbots (functions/1300): computed
# from the loaded users, chatbots and operators when the snapshot (of profile citus) has none.
VISIBILITY = "private.chatbot_visibility"


def _collisions(conn: psycopg.Connection, company: str, plan: ImportPlan) -> None:
    if conn.execute("select 1 from public.companies where id = %s", (company,)).fetchone():
        raise TenantTransferError(f"company {company} already exists in this database: nothing imported",
                                  hint="An import never overwrites rows; delete the tenant here first "
                                       "if this is a re-import.")
    for table, _ in plan.load:
        found = conn.execute(sql.SQL("select count(*) from {} where {} = %s").format(
            _qualified(table.name), sql.Identifier(table.key)), (company,)).fetchone()
        if found and found[0]:
            raise TenantTransferError(f"{table.name} already holds {found[0]} row(s) of company {company}: "
                                      "nothing imported",
                                      hint="An import never overwrites rows.")


def _copy_in(conn: psycopg.Connection, table: str, columns: tuple[str, ...], path: Path) -> None:
    stmt = sql.SQL("copy {} ({}) from stdin").format(_qualified(table), _ident_list(columns))
    with conn.cursor() as cur, cur.copy(stmt) as copy, path.open("rb") as f:
        while chunk := f.read(CHUNK):
            copy.write(chunk)


def _load_identities(conn: psycopg.Connection, directory: Path, manifest: dict[str, Any]) -> int:
    """The auth.users rows the tenant references that this database lacks (an identity
    already here is the same one: ids are random uuids). Returns how many were added."""
    entry = manifest.get("global", {}).get("auth.users")
    if not entry or not entry["rows"]:
        return 0
    auth = _table_copy(conn, load()["auth.users"])
    if auth is None:
        raise TenantTransferError("auth.users does not exist in this database")
    cols = tuple(entry["columns"])
    common = tuple(c for c in cols if c in auth.columns)
    conn.execute("create temporary table tenant_import_identities on commit drop as "
                 "select * from auth.users with no data")
    for c in cols:
        if c not in auth.columns:  # a column of the source's auth.users only (Supabase's own): staged, not kept
            conn.execute(sql.SQL("alter table tenant_import_identities add column {} text").format(sql.Identifier(c)))
    _copy_in(conn, "pg_temp.tenant_import_identities", cols, directory / entry["file"])
    cur = conn.execute(sql.SQL("insert into auth.users ({cols}) select {cols} from pg_temp.tenant_import_identities s "
                               "where not exists (select 1 from auth.users u where u.id = s.id)").format(
        cols=_ident_list(common)))
    return cur.rowcount


def import_tenant(target: DatabaseTarget, directory: Path, *, replay_from: str | None = None) -> dict[str, Any]:
    """Load a tenant export into `target` in one transaction; returns the verification report.
    replay_from (a newer ledger: database URL or file, erasure.read_source): after the
    loaded rows are verified against the snapshot, in the same transaction, the erasures
    requested since the export are carried out again (erasure.replay_entries)."""
    manifest = read_manifest(directory)
    verify_files(directory, manifest)
    company = str(manifest["company"])
    newer = read_source(replay_from, company) if replay_from is not None else None
    erasures: dict[str, Any] | None = None
    conn = _owner_connection(target, "tenant import")
    with _all_or_nothing(conn, "tenant import", "nothing imported"):
        _check_schema(conn, manifest)
        plan = _plan(conn, manifest)
        citus = conn.execute("select 1 from pg_extension where extname = 'citus'").fetchone() is not None
        conn.execute("begin")
        if citus:
            # the import mode must reach the shards' triggers on the workers too
            conn.execute("set local citus.propagate_set_commands = 'local'")
        conn.execute(sql.SQL("set local {} = {}").format(sql.Identifier(*IMPORT_SETTING.split(".")),
                                                          sql.Literal(company)))
        _collisions(conn, company, plan)
        added = _load_identities(conn, directory, manifest)
        loaded: dict[str, int] = {}
        seconds: dict[str, float] = {}
        for table, entry in plan.load:
            if table.name == "public.users" and MEMBERSHIPS in plan.derived:
                _stage_memberships(conn, directory, entry)
            started = time.perf_counter()
            try:
                _copy_in(conn, table.name, tuple(entry["columns"]), directory / entry["file"])
            except psycopg.Error as exc:
                raise _load_error(table.name, exc) from None
            loaded[table.name] = int(entry["rows"])
            if loaded[table.name] >= ANALYZE_ROWS:
                # statistics of the rows just loaded (transactional, like them): the foreign key
                # checks of the next tables plan their lookups here; planned against the empty
                # table's, each lookup of a 1M-message load scanned (5x slower at 100k)
                conn.execute(sql.SQL("analyze {}").format(_qualified(table.name)))
            seconds[table.name] = round(time.perf_counter() - started, 3)
        if VISIBILITY in plan.derived:
            conn.execute("select private.refresh_chatbot_visibility(%s, null)", (company,))
        started = time.perf_counter()
        mismatches = verify_loaded(conn, company, plan)
        seconds["verify"] = round(time.perf_counter() - started, 3)
        if mismatches:
            raise TenantTransferError("the loaded rows differ from the snapshot: " + "; ".join(mismatches),
                                      hint="Nothing was imported (rolled back).")
        if newer is not None:
            # after the verification (the hashes prove the snapshot as exported), with the
            # import mode off: a replayed erasure runs every rule of a request made here
            started = time.perf_counter()
            conn.execute(sql.SQL("set local {} = ''").format(sql.Identifier(*IMPORT_SETTING.split("."))))
            erasures = summarize(replay_entries(conn, newer))
            seconds["erasures"] = round(time.perf_counter() - started, 3)
        conn.execute("commit")
    report = {"company": company, "tables": loaded, "identities_added": added, "skipped": plan.skipped,
              "derived": plan.derived, "verified": True, "rows": sum(loaded.values()), "seconds": seconds}
    if erasures is not None:
        report["erasures"] = erasures
    return report


@contextmanager
def _all_or_nothing(conn: psycopg.Connection, action: str, outcome: str) -> Iterator[None]:
    """The body commits its transaction itself; on any error it is rolled back, a SQL error
    becomes one clear TenantTransferError ("<action>: <message>: <outcome>"), and the
    connection is closed either way."""
    try:
        yield
    except psycopg.Error as exc:
        _rollback(conn)
        raise TenantTransferError(f"{action}: {exc.diag.message_primary or exc}: {outcome}",
                                  hint=exc.diag.message_hint) from None
    except BaseException:
        _rollback(conn)
        raise
    finally:
        conn.close()


def _rollback(conn: psycopg.Connection) -> None:
    if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("rollback")


def _stage_memberships(conn: psycopg.Connection, directory: Path, users_entry: dict[str, Any]) -> None:
    """Profile citus, from a snapshot of another profile: the membership rows the users
    rows mirror, written before them (users_membership_copy checks them)."""
    conn.execute("create temporary table tenant_import_users on commit drop as select * from public.users with no data")
    _copy_in(conn, "pg_temp.tenant_import_users", tuple(users_entry["columns"]), directory / users_entry["file"])
    cols = [str(r[0]) for r in conn.execute(
        "select attname from pg_attribute where attrelid = 'private.memberships'::regclass and attnum > 0 "
        "and not attisdropped and attgenerated = '' order by attnum").fetchall()]
    source: dict[str, str] = {}  # memberships' columns are the users' own (id: the users row's)
    conn.execute(sql.SQL("insert into private.memberships ({}) select {} from pg_temp.tenant_import_users "
                         "where auth_user_id is not null").format(
        _ident_list(tuple(cols)), sql.SQL(", ").join(sql.Identifier(source.get(c, c)) for c in cols)))


def _load_error(table: str, exc: psycopg.Error) -> TenantTransferError:
    diag = exc.diag
    what = diag.message_primary or str(exc).strip()
    if diag.sqlstate == "23505":
        return TenantTransferError(f"{table}: id collision, {what} ({diag.message_detail or ''}): nothing imported",
                                   hint="An import never overwrites rows, of this tenant or another one.")
    return TenantTransferError(f"{table}: {what}: nothing imported", hint=diag.message_hint)


def verify_loaded(conn: psycopg.Connection, company: str, plan: ImportPlan) -> list[str]:
    """Count and sha256 of every loaded table, copied out again with the snapshot's columns."""
    bad = []
    for table, entry in plan.load:
        rows, digest = _copy_out(conn, _select(table, tuple(entry["columns"])), (company,), None)
        if rows != entry["rows"] or digest != entry["sha256"]:
            bad.append(f"{table.name} ({rows} rows, snapshot {entry['rows']})")
    return bad


def table_hashes(target: DatabaseTarget, company: str, manifest: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """(rows, sha256) of every table of `manifest` on `target` now, in one snapshot, with the
    manifest's columns and order: equal to the manifest's when the data is the same."""
    conn = _owner_connection(target, "tenant hashes")
    try:
        conn.execute("begin isolation level repeatable read, read only")
        out = {}
        for name, entry in manifest["tables"].items():
            table = TableCopy(name, entry["key"], tuple(entry["columns"]), tuple(entry["order"]))
            out[name] = _copy_out(conn, _select(table), (company,), None)
        conn.execute("commit")
        return out
    finally:
        conn.close()


def _counts(conn: psycopg.Connection, company: str, manifest: dict[str, Any]) -> dict[str, int]:
    out = {}
    for name, entry in manifest["tables"].items():
        row = conn.execute(sql.SQL("select count(*) from {} where {} = %s").format(
            _qualified(name), sql.Identifier(entry["key"])), (company,)).fetchone()
        out[name] = int(row[0]) if row else 0
    return out


def delete_tenant(target: DatabaseTarget, company: str, verified_export: Path) -> dict[str, Any]:
    """Delete `company` after checking that `verified_export` holds it exactly as it is now."""
    manifest = read_manifest(verified_export)
    if manifest["company"] != company:
        raise TenantTransferError(f"{verified_export} is the export of company {manifest['company']}, not {company}")
    verify_files(verified_export, manifest)
    conn = _owner_connection(target, "tenant delete")
    with _all_or_nothing(conn, "tenant delete", "nothing deleted"):
        conn.execute("begin isolation level repeatable read")
        # the company row locked first: no row naming it (every tenant table's foreign key to
        # it takes a key-share lock) is written between the check and the delete
        if conn.execute("select 1 from public.companies where id = %s for update",
                        (company,)).fetchone() is None:
            raise TenantTransferError(f"company {company} does not exist")
        changed = []
        for name, entry in manifest["tables"].items():
            table = TableCopy(name, entry["key"], tuple(entry["columns"]), tuple(entry["order"]))
            try:
                rows, digest = _copy_out(conn, _select(table), (company,), None)
            except psycopg.errors.UndefinedColumn:
                raise TenantTransferError(f"{name}: the schema changed since the export") from None
            if (rows, digest) != (entry["rows"], entry["sha256"]):
                changed.append(f"{name} ({rows} rows now, {entry['rows']} exported)")
        if changed:
            raise TenantTransferError("the tenant changed since the export: " + "; ".join(changed)
                                      + ": nothing deleted",
                                      hint="Export it again (and import that export) before deleting.")
        before = _counts(conn, company, manifest)
        try:
            conn.execute("delete from public.companies where id = %s", (company,))
        except psycopg.Error as exc:
            diag = exc.diag
            raise TenantTransferError(f"company {company} not deleted: {diag.message_primary or exc}",
                                      hint=diag.message_hint) from None
        after = _counts(conn, company, manifest)
        conn.execute("commit")
    return {"company": company, "deleted": {t: before[t] - after[t] for t in before if before[t] - after[t]},
            "kept": {t: n for t, n in after.items() if n},
            "note": "kept: the audit trail outlives its company; auth.users identities are global"}
