"""End-user erasure (GDPR Art. 17): `neurant-db erase`.

public.erase_end_user (functions/4210_erase_end_user.sql) redacts the end user's
conversations in the live and archive tables, defers what a legal hold covers and records
the request in private.erasure_ledger. What it cannot reach are the cold-storage exports
(cold_storage.py): files outside the database. This module rewrites them: in every export
of private.cold_exports that holds rows of the company, the end user's conversations get
the same redaction (end_user_id 'erased', message content '[erased]', reaction comments
and escalation details ''), the files are written anew (temporary file, fsync, rename),
the manifest gets the new row counts and checksums plus an `erasures` entry, and
private.cold_exports.manifest_sha256 follows it, so `neurant-db archive verify` and
`archive restore` keep working (a restored export brings back the redacted rows).

Legal holds win here too: under a company-wide hold the cold files are left as they are
and the ledger says `cold_files.deferred`; `neurant-db erase --pending` (run after the
release) finds the end user again without their id, by the ledger's subject reference
(sha256 of company and end-user id) of each cold conversation row.

After a restore or an import of data older than an erasure, `neurant-db erase --replay-from
SOURCE` (`replay`) reads the newer ledger (the source database's, or a file of
`erase --export-ledger`) and, per request the target lacks, calls private.erasure_replay
(functions/4710): the end user is found by the subject reference alone and erased by
public.erase_end_user, the row marked `replay_of` the request; then the cold files, as
above. `tenant import --replay-erasures-from` and `restore-check` use `replay_entries`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from .cold_storage import MANIFEST, fsync_dir, iter_lines, read_manifest, sha256_file, verify_export
from .database import DatabaseTarget
from .errors import NeurantError
from .jobs import job_connection, raise_job_error
from .private_files import private_file

ERASED_ID = "erased"
ERASED_TEXT = "[erased]"
CONVERSATIONS = "archive.conversations_archived"
# table -> (column naming the conversation, {column: redacted value}); the one place the
# cold rewrite says what is personal (private.erasure_redact says it for the tables).
REDACT: dict[str, tuple[str, dict[str, str]]] = {
    CONVERSATIONS: ("id", {"end_user_id": ERASED_ID}),
    "archive.messages_archived": ("conversation_id", {"content": ERASED_TEXT}),
    "archive.message_reactions_archived": ("conversation_id", {"comment": ""}),
    "archive.hitl_escalations_archived": ("conversation_id", {"detail": ""}),
}


def subject_ref(company: str, end_user_id: str) -> str:
    """private.erasure_subject_ref in Python: hex sha256 of "<company>:<end_user_id>"."""
    return hashlib.sha256(f"{company}:{end_user_id}".encode()).hexdigest()


@dataclass
class ColdResult:
    exports: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    deferred: bool = False
    unreachable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"exports": self.exports, "rows": self.rows, "deferred": self.deferred,
                "unreachable": self.unreachable}


def _holds(conn: psycopg.Connection, company: str) -> tuple[bool, set[str]]:
    """(a company-wide hold is active, the conversations held one by one)."""
    rows = conn.execute("select conversation_id::text from public.legal_holds "
                        "where company_id = %s and released_at is null", (company,)).fetchall()
    return any(r[0] is None for r in rows), {r[0] for r in rows if r[0] is not None}


def _write_lines(path: Path, lines: list[bytes]) -> dict[str, Any]:
    content = hashlib.sha256()
    with private_file(path) as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            for line in lines:
                gz.write(line)
                content.update(line)
        raw.flush()
        os.fsync(raw.fileno())
    return {"rows": len(lines), "sha256": sha256_file(path), "content_sha256": content.hexdigest()}


def _rewrite_export(directory: Path, company: str, match: Callable[[dict[str, Any]], bool],
                    held: set[str], ledger_ids: list[str]) -> tuple[dict[str, int], str] | None:
    """Redact the matching conversations of `company` in one export directory. Returns the
    redacted rows per table and the new manifest's sha256, or None when nothing matched."""
    verify_export(directory)  # never rewrite an export that is already damaged
    manifest = read_manifest(directory)
    if company not in manifest.get("companies", []):
        return None
    tables: dict[str, Any] = manifest["tables"]
    entry = tables.get(CONVERSATIONS)
    if not entry or not entry["rows"]:
        return None
    ids: set[str] = set()
    for line in iter_lines(directory / entry["file"]):
        row = json.loads(line)
        if row.get("company_id") == company and row.get("id") not in held and match(row):
            ids.add(str(row["id"]))
    if not ids:
        return None
    counts: dict[str, int] = {}
    staged: list[tuple[Path, Path]] = []
    for table, (key, columns) in REDACT.items():
        entry = tables.get(table)
        if not entry or not entry["rows"]:
            continue
        lines: list[bytes] = []
        changed = 0
        for line in iter_lines(directory / entry["file"]):
            row = json.loads(line)
            if row.get("company_id") == company and str(row.get(key)) in ids:
                row.update(columns)
                line = json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
                changed += 1
            lines.append(line)
        if not changed:
            continue
        tmp = directory / (entry["file"] + ".erasing")
        entry.update(_write_lines(tmp, lines))
        staged.append((tmp, directory / entry["file"]))
        counts[table] = changed
    manifest.setdefault("erasures", []).append(
        {"at": datetime.now(UTC).isoformat(), "ledger_ids": ledger_ids, "conversations": len(ids), "rows": counts})
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    tmp_manifest = directory / (MANIFEST + ".erasing")
    with private_file(tmp_manifest) as f:
        f.write(manifest_bytes)
        f.flush()
        os.fsync(f.fileno())
    for tmp, final in staged:
        os.replace(tmp, final)
    os.replace(tmp_manifest, directory / MANIFEST)
    fsync_dir(directory)
    verify_export(directory)
    return counts, hashlib.sha256(manifest_bytes).hexdigest()


def shred_cold(conn: psycopg.Connection, company: str, match: Callable[[dict[str, Any]], bool],
               ledger_ids: list[str]) -> ColdResult:
    """Redact the matching conversations of `company` in every recorded cold export."""
    result = ColdResult()
    company_wide, held = _holds(conn, company)
    if company_wide:
        result.deferred = True
        return result
    exports = conn.execute("select id::text, location from private.cold_exports order by created_at, id").fetchall()
    for export_id, location in exports:
        directory = Path(location)
        if not (directory / MANIFEST).is_file():
            result.unreachable.append(str(export_id))
            continue
        done = _rewrite_export(directory, company, match, held, ledger_ids)
        if done is None:
            continue
        counts, manifest_sha256 = done
        conn.execute("update private.cold_exports set manifest_sha256 = %s where id = %s", (manifest_sha256, export_id))
        result.exports += 1
        for table, n in counts.items():
            result.rows[table] = result.rows.get(table, 0) + n
    return result


def erase(target: DatabaseTarget, *, company: str, end_user_id: str, reason: str) -> dict[str, Any]:
    """Erase one end user of one company: database (public.erase_end_user), then cold
    files. Returns the tenant's receipt (JSON-ready)."""
    conn = job_connection(target, "erase")
    try:
        try:
            row = conn.execute("select public.erase_end_user(%s, %s, %s)", (company, end_user_id, reason)).fetchone()
        except psycopg.Error as exc:
            raise_job_error(exc, "erase")
            raise
        assert row is not None
        receipt: dict[str, Any] = row[0]
        ledger_id = str(receipt["ledger_id"])
        cold = shred_cold(conn, company, lambda r: r.get("end_user_id") == end_user_id, [ledger_id])
        _record_cold(conn, company, ledger_id, cold)
        receipt["cold_files"] = cold.as_dict()
        return receipt
    finally:
        conn.close()


def _record_cold(conn: psycopg.Connection, company: str, ledger_id: str, cold: ColdResult) -> None:
    conn.execute("update private.erasure_ledger set cold_files = %s::jsonb where company_id = %s and id = %s",
                 (json.dumps(cold.as_dict()), company, ledger_id))


def erase_pending(target: DatabaseTarget) -> list[dict[str, Any]]:
    """The cold part of every request that has not had it: deferred by a company-wide hold
    (carried out once no such hold is active), or interrupted after the database part
    (cold_files still null). The end user is found by subject reference, not by id."""
    conn = job_connection(target, "erase")
    try:
        pending = conn.execute(
            "select company_id::text, id::text, subject_ref from private.erasure_ledger "
            "where cold_files is null or (cold_files ->> 'deferred')::boolean "
            "order by requested_at, id").fetchall()
        done: list[dict[str, Any]] = []
        for company, ledger_id, ref in pending:
            def match(row: dict[str, Any], company: str = company, ref: str = ref) -> bool:
                return subject_ref(company, str(row.get("end_user_id"))) == ref
            cold = shred_cold(conn, company, match, [ledger_id])
            if cold.deferred:
                continue
            _record_cold(conn, company, ledger_id, cold)
            done.append({"ledger_id": ledger_id, "company_id": company, "cold_files": cold.as_dict()})
        return done
    except OSError as exc:
        raise NeurantError(f"cold files: {exc}") from None
    finally:
        conn.close()


# --- replay after a restore or an import -------------------------------------------------

LEDGER_FORMAT = "neurant-db erasure ledger"
LEDGER_FORMAT_VERSION = 1
_ENTRY_KEYS = ("company_id", "request", "subject_ref", "reason", "status", "requested_at")


class ReplayError(NeurantError):
    """The newer ledger cannot be read, or a replay failed (nothing of that entry done)."""

    exit_code = 1


def ledger_entries(conn: psycopg.Connection, company: str | None = None) -> list[dict[str, Any]]:
    """Every request of a database's ledger (no personal data), oldest first: `request` is
    the original request's id (a replayed row names the request it replays)."""
    if conn.execute("select to_regclass('private.erasure_ledger') is null").fetchone() == (True,):
        return []
    has_replay = conn.execute("select 1 from pg_attribute where attrelid = 'private.erasure_ledger'::regclass "
                              "and attname = 'replay_of' and not attisdropped").fetchone() is not None
    origin = "coalesce(replay_of, id)" if has_replay else "id"
    rows = conn.execute(
        f"select company_id::text, {origin}::text, subject_ref, reason, status, requested_at::text "
        "from private.erasure_ledger where %(c)s::uuid is null or company_id = %(c)s::uuid "
        "order by requested_at, id", {"c": company}).fetchall()
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, Any]] = []
    for row in rows:
        entry = dict(zip(_ENTRY_KEYS, row, strict=True))
        if (entry["company_id"], entry["request"]) not in seen:  # a request and its replays: once
            seen.add((entry["company_id"], entry["request"]))
            out.append(entry)
    return out


def export_ledger(target: DatabaseTarget, path: Path, company: str | None = None) -> dict[str, Any]:
    """Write the ledger's requests (hashes, ids, reasons: no personal data) to a JSON file
    for `erase --replay-from FILE` where the source database is out of reach."""
    conn = job_connection(target, "erase")
    try:
        entries = ledger_entries(conn, company)
    finally:
        conn.close()
    doc = {"format": LEDGER_FORMAT, "format_version": LEDGER_FORMAT_VERSION,
           "exported_at": datetime.now(UTC).isoformat(), "company": company, "entries": entries}
    tmp = path.with_name(path.name + ".tmp")
    with private_file(tmp) as f:
        f.write((json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    os.replace(tmp, path)
    return {"file": str(path), "entries": len(entries), "company": company}


def read_source(source: str, company: str | None = None) -> list[dict[str, Any]]:
    """The requests of the newer ledger: SOURCE is a ledger file (erase --export-ledger) or
    the connection string of the database it belongs to (the live source)."""
    path = Path(source)
    if not source.startswith(("postgres://", "postgresql://")) and "=" not in source:
        if not path.is_file():
            raise ReplayError(f"{source}: no such ledger file",
                              hint="Pass a file written by `neurant-db erase --export-ledger` or the "
                                   "postgresql:// URL of the database whose ledger is newer.")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReplayError(f"{source}: not a ledger file ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != LEDGER_FORMAT \
                or doc.get("format_version") != LEDGER_FORMAT_VERSION or not isinstance(doc.get("entries"), list):
            raise ReplayError(f"{source}: not a ledger file of format {LEDGER_FORMAT!r} "
                              f"version {LEDGER_FORMAT_VERSION}")
        entries = [e for e in doc["entries"] if company is None or e.get("company_id") == company]
        for e in entries:
            if not isinstance(e, dict) or any(not isinstance(e.get(k), str) for k in _ENTRY_KEYS[:3]):
                raise ReplayError(f"{source}: an entry lacks company_id, request or subject_ref")
        return entries
    try:
        conn = DatabaseTarget(source).connect(autocommit=True, purpose="erase replay source")
    except psycopg.Error as exc:
        raise ReplayError(f"the source database cannot be reached: {exc.diag.message_primary or exc}") from None
    try:
        conn.execute("set search_path = pg_catalog, pg_temp")
        return ledger_entries(conn, company)
    except psycopg.Error as exc:
        raise ReplayError(f"the source's ledger cannot be read: {exc.diag.message_primary or exc}",
                          hint="Connect as the owner or a role with service_role.") from None
    finally:
        conn.close()


def replay_entries(conn: psycopg.Connection, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The database part of the replay, on `conn` (in the caller's transaction if it has one):
    one private.erasure_replay per request, oldest first. Returns its outcomes."""
    outcomes: list[dict[str, Any]] = []
    if entries and conn.execute("select to_regprocedure('private.erasure_replay(uuid, uuid, text, text)') is null"
                                ).fetchone() == (True,):
        raise ReplayError("this database's schema predates the erasure replay (functions/4710_erasure_replay)",
                          hint="Migrate it (neurant-db migrate), then replay.")
    for e in entries:
        row = conn.execute("select private.erasure_replay(%s, %s, %s, %s)",
                           (e["company_id"], e["request"], e["subject_ref"], e.get("reason") or "")).fetchone()
        assert row is not None
        outcomes.append(row[0])
    return outcomes


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per outcome (replayed, already_present, matched_nobody, company_absent), the
    replayed ones left deferred by a hold, and every outcome."""
    counts = {k: 0 for k in ("replayed", "already_present", "matched_nobody", "company_absent")}
    for o in outcomes:
        counts[o["outcome"]] += 1
    deferred = sum(1 for o in outcomes if o["outcome"] == "replayed" and o.get("status") == "deferred")
    return {"entries": len(outcomes), **counts, "deferred": deferred, "outcomes": outcomes}


def replay(target: DatabaseTarget, source: str, *, company: str | None = None, cold: bool = True) -> dict[str, Any]:
    """`erase --replay-from SOURCE`: every request of the newer ledger this database lacks,
    carried out again (database, then cold files as `erase` does). Idempotent."""
    entries = read_source(source, company)
    conn = job_connection(target, "erase")
    try:
        try:
            outcomes = replay_entries(conn, entries)
        except psycopg.Error as exc:
            raise_job_error(exc, "erase replay")
            raise
        if cold:
            for o in outcomes:
                if o["outcome"] not in ("replayed", "matched_nobody"):
                    continue
                ref = next(e["subject_ref"] for e in entries
                           if e["request"] == o["request"] and e["company_id"] == o["company_id"])

                def match(row: dict[str, Any], company: str = o["company_id"], ref: str = ref) -> bool:
                    return subject_ref(company, str(row.get("end_user_id"))) == ref
                try:
                    done = shred_cold(conn, o["company_id"], match, [str(o["ledger_id"])])
                except OSError as exc:
                    raise NeurantError(f"cold files: {exc}") from None
                _record_cold(conn, o["company_id"], str(o["ledger_id"]), done)
                o["cold_files"] = done.as_dict()
        return {"source": "file" if Path(source).is_file() else "database", **summarize(outcomes)}
    finally:
        conn.close()
