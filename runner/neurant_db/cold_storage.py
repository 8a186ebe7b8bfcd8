"""Cold storage: export archived rows to files, verify them, and only then delete them
from the database; read an export back (restore).

An export is one directory: `manifest.json` plus one gzip JSON-lines file per archive
table (`<table>.jsonl.gz`, one `row_to_json` object per line). The manifest holds, per
file, the row count, the sha256 of the compressed file and of its content. One export
is one transaction (REPEATABLE READ): select the rows, write and fsync the files, read
them back and compare, delete exactly those rows (the delete counts must equal the
manifest's), record the export in private.cold_exports, commit. Any failure before the
commit rolls the deletion back and removes the directory: the rows stay in the archive.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from .database import DatabaseTarget
from .errors import NeurantError
from .jobs import JobError, JobResult, Progress, fetch_run, job_connection, raise_job_error
from .private_files import private_dir, private_file

FORMAT = "neurant-db cold export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

# One export holds the keys of one company (private.cold_export_keys): every statement names
# the company (on Citus, one shard; docs/scale-out.md).
_CONV = "where t.company_id = %(company)s and t.conversation_id = any(%(conversations)s)"
_DAYS = ("using unnest(%(bots)s::uuid[], %(days)s::date[]) k(chatbot_id, day) "
         "where t.company_id = %(company)s and t.chatbot_id = k.chatbot_id and t.day = k.day")
# Export order = restore order (parents first); deletion runs in reverse.
# (table, SQL selecting the keys' rows)
TABLES: list[tuple[str, str]] = [
    ("archive.conversations_archived",
     "select row_to_json(t)::text from archive.conversations_archived t "
     "where t.company_id = %(company)s and t.id = any(%(conversations)s) order by t.id"),
    *[(table, f"select row_to_json(t)::text from {table} t {_CONV} order by t.id")
      for table in ("archive.messages_archived", "archive.message_reactions_archived",
                    "archive.hitl_escalations_archived", "archive.knowledge_queries_archived")],
    ("archive.integration_logs_archived",
     "select row_to_json(t)::text from archive.integration_logs_archived t "
     "where t.company_id = %(company)s and t.id = any(%(logs)s) order by t.id"),
    ("archive.analytics_archived",
     "select row_to_json(t)::text from archive.analytics_archived t "
     "join unnest(%(bots)s::uuid[], %(days)s::date[]) k(chatbot_id, day) on t.chatbot_id = k.chatbot_id "
     "and t.day = k.day where t.company_id = %(company)s order by t.chatbot_id, t.day"),
]

DELETES: dict[str, str] = {
    **{table: f"delete from {table} t {_CONV}"
       for table in ("archive.message_reactions_archived", "archive.knowledge_queries_archived",
                     "archive.hitl_escalations_archived", "archive.messages_archived")},
    "archive.conversations_archived":
        "delete from archive.conversations_archived t "
        "where t.company_id = %(company)s and t.id = any(%(conversations)s)",
    "archive.integration_logs_archived":
        "delete from archive.integration_logs_archived t where t.company_id = %(company)s and t.id = any(%(logs)s)",
    "archive.analytics_archived": f"delete from archive.analytics_archived t {_DAYS}",
}
DELETE_ORDER = ["archive.message_reactions_archived", "archive.knowledge_queries_archived",
                "archive.hitl_escalations_archived", "archive.messages_archived",
                "archive.conversations_archived", "archive.integration_logs_archived",
                "archive.analytics_archived"]

KEYS_SQL = ("select o_conversations, o_logs, o_bots, o_days "
            "from private.cold_export_keys(%(company)s, %(as_of)s, %(limit)s)")
COMPANIES_SQL = "select company_id from private.lifecycle_cutoffs(%(as_of)s) where not company_held"


class ExportInvalid(NeurantError):
    """An export directory is incomplete, altered or does not match its manifest."""

    exit_code = 1


@dataclass
class ExportResult:
    export_id: str
    path: Path
    rows: dict[str, int]

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass
class ColdRun:
    job: JobResult
    exports: list[ExportResult] = field(default_factory=list)


def _file_name(table: str) -> str:
    return table.split(".", 1)[1] + ".jsonl.gz"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_table(conn: psycopg.Connection, query: str, params: dict[str, Any], path: Path) -> dict[str, Any]:
    content = hashlib.sha256()
    rows = 0
    with private_file(path) as raw:
        with (gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
              conn.cursor(name=f"cold_{path.stem.replace('.', '_')}") as cur):
            cur.itersize = 2000
            cur.execute(query, params)
            for (line,) in cur:
                data = line.encode("utf-8") + b"\n"
                gz.write(data)
                content.update(data)
                rows += 1
        raw.flush()
        os.fsync(raw.fileno())
    return {"file": path.name, "rows": rows, "sha256": sha256_file(path), "content_sha256": content.hexdigest()}


def iter_lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as gz:
        yield from gz


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise ExportInvalid(f"{directory}: no {MANIFEST}", hint="point at one export directory")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ExportInvalid(f"{path}: not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ExportInvalid(f"{path}: not a {FORMAT} v{FORMAT_VERSION} manifest")
    return manifest


def verify_export(directory: Path) -> dict[str, int]:
    """Check every file against the manifest (file sha256, content sha256, row count,
    one JSON object per line). Returns rows per table; raises ExportInvalid."""
    manifest = read_manifest(directory)
    counts: dict[str, int] = {}
    for table, entry in manifest["tables"].items():
        path = directory / entry["file"]
        if not path.is_file():
            raise ExportInvalid(f"{directory}: {entry['file']} is missing")
        if sha256_file(path) != entry["sha256"]:
            raise ExportInvalid(f"{path}: sha256 differs from the manifest (file altered or truncated)")
        content = hashlib.sha256()
        rows = 0
        try:
            for line in iter_lines(path):
                content.update(line)
                if not isinstance(json.loads(line), dict):
                    raise ExportInvalid(f"{path}: line {rows + 1} is not a JSON object")
                rows += 1
        except (OSError, EOFError, ValueError) as exc:
            raise ExportInvalid(f"{path}: unreadable: {exc}") from None
        if rows != entry["rows"] or content.hexdigest() != entry["content_sha256"]:
            raise ExportInvalid(f"{path}: {rows} rows / content checksum differ from the manifest "
                                f"({entry['rows']} rows)")
        counts[table] = rows
    return counts


def preview(conn: psycopg.Connection, as_of: datetime) -> dict[str, int]:
    row = conn.execute("select private.cold_export_preview(%s)", (as_of,)).fetchone()
    assert row is not None
    return {str(k): int(v) for k, v in row[0].items()}


def _export_one(conn: psycopg.Connection, out_dir: Path, company: str, as_of: datetime, limit: int,
                run_id: int, total: dict[str, int]) -> ExportResult | None:
    """One export of one company = one transaction. Returns None when nothing of the
    company is left to export."""
    export_id = conn.execute("select gen_random_uuid()::text").fetchone()[0]  # type: ignore[index]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = out_dir / f"{stamp}-{export_id[:8]}"
    committed = False
    try:
        with conn.transaction():
            conn.execute("set transaction isolation level repeatable read")
            row = conn.execute(KEYS_SQL, {"company": company, "as_of": as_of, "limit": limit}).fetchone()
            assert row is not None
            keys = {"company": company, "conversations": row[0], "logs": row[1], "bots": row[2], "days": row[3]}
            if not (keys["conversations"] or keys["logs"] or keys["days"]):
                return None
            private_dir(directory, exist_ok=False)
            tables: dict[str, Any] = {}
            for table, query in TABLES:
                tables[table] = _write_table(conn, query, keys, directory / _file_name(table))
            companies = [company]
            manifest = {
                "format": FORMAT, "version": FORMAT_VERSION, "export_id": export_id,
                "created_at": datetime.now(UTC).isoformat(), "as_of": as_of.isoformat(),
                "job_run_id": run_id, "companies": companies, "tables": tables,
                "restore": "neurant-db archive restore <this directory>",
            }
            manifest_path = directory / MANIFEST
            manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
            with private_file(manifest_path) as f:
                f.write(manifest_bytes)
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(directory)
            # read everything back before deleting anything
            verified = verify_export(directory)
            rows = {t: e["rows"] for t, e in tables.items()}
            if verified != rows:
                raise ExportInvalid(f"{directory}: read back {verified}, wrote {rows}")
            for table in DELETE_ORDER:
                cur = conn.execute(DELETES[table], keys)
                if cur.rowcount != rows[table]:
                    raise ExportInvalid(
                        f"{table}: deleted {cur.rowcount} rows but exported {rows[table]}; nothing was deleted",
                        hint="the archive changed during the export; run it again")
            counts = {t: n for t, n in rows.items() if n}
            conn.execute(
                "insert into private.cold_exports (id, job_run_id, location, manifest_sha256, row_counts) "
                "values (%s, %s, %s, %s, %s)",
                (export_id, run_id, str(directory.resolve()), hashlib.sha256(manifest_bytes).hexdigest(),
                 json.dumps(counts)))
            conn.execute("select private.job_progress(%s, 'export', %s::jsonb, %s::jsonb)",
                         (run_id, json.dumps(counts), json.dumps(total)))
        committed = True
        return ExportResult(export_id, directory, counts)
    finally:
        if not committed and directory.exists():
            shutil.rmtree(directory, ignore_errors=True)


def cold_export(target: DatabaseTarget, out_dir: Path, *, as_of: datetime | None = None,
                batch_size: int = 1000, max_batches: int | None = None, dry_run: bool = False,
                on_progress: Callable[[Progress], None] | None = None) -> ColdRun:
    """Export archived data past cold_after_days, verify it, then delete it: one export
    directory (and one transaction) per batch of one company, up to batch_size conversations
    (and as many logs and analytics days)."""
    if batch_size < 1:
        raise JobError("batch size must be at least 1")
    conn = job_connection(target, "jobs cold-export", own_session=True)
    try:
        when = as_of or conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        params = {"batch_size": batch_size, "max_batches": max_batches, "as_of": when.isoformat(),
                  "out": str(out_dir)}
        try:
            run_id = int(conn.execute("select private.job_start('cold-export', %s::jsonb, %s)",
                                      (json.dumps(params), dry_run)).fetchone()[0])  # type: ignore[index]
        except psycopg.Error as exc:
            raise_job_error(exc, "cold-export")
            raise
        exports: list[ExportResult] = []
        error: str | None = None
        try:
            total = preview(conn, when)
            if dry_run:
                conn.execute("update private.job_runs set rows_moved = %s::jsonb where id = %s",
                             (json.dumps(total), run_id))
            else:
                if on_progress:
                    on_progress(Progress("start", {}, total))
                out_dir.mkdir(parents=True, exist_ok=True)
                done: dict[str, int] = {}
                companies = [str(r[0]) for r in conn.execute(COMPANIES_SQL, {"as_of": when})]
                for company in companies:
                    while max_batches is None or len(exports) < max_batches:
                        result = _export_one(conn, out_dir, company, when, batch_size, run_id, total)
                        if result is None:
                            break
                        exports.append(result)
                        for k, v in result.rows.items():
                            done[k] = done.get(k, 0) + v
                        if on_progress:
                            on_progress(Progress("export", dict(done), total))
        except (psycopg.Error, OSError, NeurantError) as exc:
            error = exc.message if isinstance(exc, NeurantError) else str(exc).strip()
        conn.execute("select private.job_finish(%s, %s, %s)",
                     (run_id, "failed" if error else "succeeded", error))
        job = fetch_run(conn, run_id)
        assert job is not None
        if error:
            raise JobError(f"cold-export run {run_id} failed: {error}",
                           hint="exports committed before the error are complete; the failed one was "
                                "rolled back and its directory removed")
        return ColdRun(job, exports)
    finally:
        conn.close()


def restore_export(target: DatabaseTarget, directory: Path, *, dry_run: bool = False,
                   allow_unrecorded: bool = False) -> dict[str, int]:
    """Read an export back into the archive tables, all or nothing. Refuses an altered
    export, one whose rows are already in the database, and (unless allow_unrecorded)
    one that private.cold_exports does not list as deleted."""
    counts = verify_export(directory)
    manifest = read_manifest(directory)
    conn = job_connection(target, "restore")
    try:
        state = conn.execute("select status from private.cold_exports where id = %s",
                             (manifest["export_id"],)).fetchone()
        if state is None and not allow_unrecorded:
            raise ExportInvalid(
                f"export {manifest['export_id']} is not recorded in private.cold_exports",
                hint="an export whose deletion never committed still has its rows in the archive; "
                     "pass --allow-unrecorded to restore it into another database")
        if state is not None and state[0] == "restored":
            raise ExportInvalid(f"export {manifest['export_id']} was already restored")
        if dry_run:
            return counts
        try:
            with conn.transaction():
                for table, _query in TABLES:
                    entry = manifest["tables"].get(table)
                    if not entry or not entry["rows"]:
                        continue
                    batch: list[str] = []
                    for line in iter_lines(directory / entry["file"]):
                        batch.append(line.decode("utf-8"))
                        if len(batch) >= 1000:
                            _insert(conn, table, batch)
                            batch = []
                    if batch:
                        _insert(conn, table, batch)
                conn.execute("update private.cold_exports set status = 'restored', restored_at = now() "
                             "where id = %s", (manifest["export_id"],))
        except psycopg.errors.UniqueViolation:
            raise ExportInvalid(f"{directory}: some of its rows are already in the archive; nothing restored",
                                hint="an export can be restored once") from None
        except psycopg.Error as exc:
            raise JobError(f"restore of {directory} failed: {exc.diag.message_primary or exc}; "
                           "nothing restored") from None
        return counts
    finally:
        conn.close()


def _insert(conn: psycopg.Connection, table: str, lines: list[str]) -> None:
    schema, name = table.split(".")
    conn.execute(
        psycopg.sql.SQL("insert into {t} select * from jsonb_populate_recordset(null::{t}, %s::jsonb)").format(
            t=psycopg.sql.Identifier(schema, name)),
        ("[" + ",".join(lines) + "]",))
