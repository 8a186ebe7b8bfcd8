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
    with path.open("wb") as raw:
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
    with tmp_manifest.open("wb") as f:
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
