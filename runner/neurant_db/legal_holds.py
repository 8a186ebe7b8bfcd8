"""Legal holds from the command line (`neurant-db archive hold|release|holds`): place,
release and list rows of public.legal_holds, on a job connection (a role that bypasses
RLS), with the table's own refusals reported as job errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from .database import DatabaseTarget
from .errors import NeurantError
from .jobs import job_connection, raise_job_error


@dataclass(frozen=True)
class LegalHold:
    id: str
    company_id: str
    conversation_id: str | None  # None: the whole company is held
    reason: str
    set_by: str
    created_at: datetime
    released_at: datetime | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "company_id": self.company_id, "conversation_id": self.conversation_id,
                "reason": self.reason, "set_by": self.set_by, "created_at": self.created_at,
                "released_at": self.released_at, "active": self.active}


def place_hold(target: DatabaseTarget, *, company: str, conversation: str | None, reason: str,
               set_by: str) -> str:
    """Hold the company (or one conversation of it); returns the new hold's id."""
    conn = job_connection(target, "legal hold")
    try:
        row = conn.execute(
            "insert into public.legal_holds (company_id, conversation_id, reason, set_by) "
            "values (%s, %s, %s, %s) returning id", (company, conversation, reason, set_by)).fetchone()
    except psycopg.Error as exc:
        raise_job_error(exc, "hold")
        raise
    finally:
        conn.close()
    return str(row[0]) if row else "?"


def release_hold(target: DatabaseTarget, *, hold_id: str, company: str, released_by: str) -> None:
    """Release an active hold of the company (the row stays as history)."""
    conn = job_connection(target, "legal hold")
    try:
        cur = conn.execute(
            "update public.legal_holds set released_at = now(), released_by = %s "
            "where company_id = %s and id = %s and released_at is null", (released_by, company, hold_id))
    except psycopg.Error as exc:
        raise_job_error(exc, "release")
        raise
    finally:
        conn.close()
    if cur.rowcount != 1:
        raise NeurantError(f"no active legal hold {hold_id} in company {company}")


def list_holds(target: DatabaseTarget, *, include_released: bool) -> list[LegalHold]:
    """The holds, oldest first: the active ones, or all with include_released."""
    conn = job_connection(target, "legal holds")
    try:
        rows = conn.execute(
            "select id, company_id, conversation_id, reason, set_by, created_at, released_at "
            "from public.legal_holds where %s or released_at is null order by created_at",
            (include_released,)).fetchall()
    finally:
        conn.close()
    return [LegalHold(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), r[3], r[4], r[5], r[6])
            for r in rows]
