"""End-user erasure in the cold-storage files and through the CLI (`neurant-db erase`):
the exports holding the end user's archived conversations are rewritten, their manifests,
checksums and private.cold_exports follow, `archive verify` and `archive restore` still
work, other end users and other tenants stay byte for byte, and a company-wide legal hold
defers the cold part until `neurant-db erase --pending` after the release. The database
part (live, archive, analytics, ledger, roles) is proved in tests/pgtap/4200_end_user_erasure.sql."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.cold_storage import cold_export, restore_export, verify_export
from neurant_db.database import DatabaseTarget
from neurant_db.jobs import call_job
from neurant_db.lifecycle_demo import load_demo
from neurant_db.testdb import TestDatabase

from .conftest import migrated_template, scratch_database

COMPANY_1 = "00000000-0000-4000-9000-000000000001"
COMPANY_2 = "00000000-0000-4000-9000-000000000002"
END_USER = "end-user-10"
FAR_FUTURE = datetime(2040, 1, 1, tzinfo=UTC)



@pytest.fixture(scope="module")
def template(neurant_server: TestDatabase) -> Iterator[str]:
    with migrated_template(neurant_server.url, "erasure_tpl") as name:
        yield name


@pytest.fixture
def db(neurant_server: TestDatabase, template: str) -> Iterator[str]:
    with scratch_database(neurant_server.url, template=template) as url:
        yield url


def _cold(db: str, out: Path) -> list[Path]:
    """Two companies whose conversations (one per end user, end-user-1..12) went to cold
    storage, several exports each; plus one live conversation of END_USER in company 1."""
    with psycopg.connect(db, autocommit=True) as conn:
        load_demo(conn, companies=2, conversations=12, messages=3)
        call_job(conn, "archive")
    run = cold_export(DatabaseTarget(db), out, as_of=FAR_FUTURE, batch_size=5)
    assert len(run.exports) == 6
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) values "
                     "(%s, '00000000-0000-4000-c000-00000000e001', '00000000-0000-4000-b000-00000000000b', %s, 'web')",
                     (COMPANY_1, END_USER))
        conn.execute("insert into public.messages (company_id, conversation_id, sender_type, content) values "
                     "(%s, '00000000-0000-4000-c000-00000000e001', 'end_user', 'I live at Calle Mayor 1')",
                     (COMPANY_1,))
    return [e.path for e in run.exports]


def _rows(exports: list[Path]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for path in exports:
        for entry_table, entry in json.loads((path / "manifest.json").read_text())["tables"].items():
            with gzip.open(path / entry["file"], "rb") as f:
                out.setdefault(entry_table, []).extend(json.loads(line) for line in f)
    return out


def _conversation_of(rows: dict[str, list[dict[str, Any]]], company: str, end_user: str) -> list[str]:
    return [r["id"] for r in rows["archive.conversations_archived"]
            if r["company_id"] == company and r["end_user_id"] == end_user]


def _erase(db: str, *args: str) -> Any:
    """The JSON `neurant-db erase` prints: a receipt, or with --pending the list of receipts."""
    result = CliRunner().invoke(cli, ["--database-url", db, "erase", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# rule: end-user-erasure (docs/rules.md)
def test_erasure_rewrites_the_cold_files_and_they_still_verify_and_restore(db: str, tmp_path: Path) -> None:
    exports = _cold(db, tmp_path)
    before = _rows(exports)
    [target] = _conversation_of(before, COMPANY_1, END_USER)
    assert _conversation_of(before, COMPANY_2, END_USER), "company 2 has an end user of the same id"

    receipt = _erase(db, "--company", COMPANY_1, "--end-user", END_USER, "--reason", "GDPR request 2026-118")
    assert receipt["status"] == "done" and receipt["conversations"] == 1
    assert receipt["erased"]["public.messages"] == 1
    assert receipt["cold_files"] == {"exports": 1, "deferred": False, "unreachable": [],
                                     "rows": {"archive.conversations_archived": 1, "archive.messages_archived": 3,
                                              "archive.message_reactions_archived": 1,
                                              "archive.hitl_escalations_archived": 1}}

    after = _rows(exports)
    assert not _conversation_of(after, COMPANY_1, END_USER), "no cold row carries the end user id"
    assert {m["content"] for m in after["archive.messages_archived"] if m["conversation_id"] == target} == {"[erased]"}
    # everything else is unchanged, row for row (other end users, the other company)
    for table, rows in before.items():
        assert len(after[table]) == len(rows), f"{table}: rows lost"
        key = "id" if table == "archive.conversations_archived" else "conversation_id"
        untouched = [r for r in rows if not (r["company_id"] == COMPANY_1 and r.get(key) == target)]
        assert all(r in after[table] for r in untouched), f"{table}: a row of someone else changed"
    with psycopg.connect(db, autocommit=True) as conn:
        for export in exports:
            verify_export(export)
            sha = hashlib.sha256((export / "manifest.json").read_bytes()).hexdigest()
            recorded = conn.execute("select manifest_sha256 from private.cold_exports where location = %s",
                                    (str(export.resolve()),)).fetchone()
            assert recorded == (sha,), "private.cold_exports follows the rewritten manifest"
        ledger = conn.execute("select row_to_json(l)::text, cold_files from private.erasure_ledger l "
                              "where company_id = %s", (COMPANY_1,)).fetchall()
    assert len(ledger) == 1 and END_USER not in ledger[0][0] and "Calle Mayor" not in ledger[0][0]
    assert ledger[0][1]["exports"] == 1
    rewritten = next(e for e in exports if json.loads((e / "manifest.json").read_text()).get("erasures"))
    restore_export(DatabaseTarget(db), rewritten)
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("select end_user_id from archive.conversations_archived where company_id = %s and id = %s",
                            (COMPANY_1, target)).fetchone() == ("erased",), "a restore brings back the redacted row"


# rule: end-user-erasure (docs/rules.md)
def test_a_company_wide_hold_defers_the_cold_files_until_released(db: str, tmp_path: Path) -> None:
    exports = _cold(db, tmp_path)
    before = _rows(exports)
    with psycopg.connect(db, autocommit=True) as conn:
        hold = conn.execute("insert into public.legal_holds (company_id, reason, set_by) values (%s, %s, %s) "
                            "returning id::text", (COMPANY_1, "Regulator request 2026-9", "legal")).fetchone()
    assert hold is not None
    receipt = _erase(db, "--company", COMPANY_1, "--end-user", END_USER, "--reason", "GDPR request 2026-119")
    assert receipt["status"] == "deferred" and receipt["deferred_conversations"] == 1
    assert receipt["cold_files"]["deferred"] is True
    assert _rows(exports) == before, "legal holds win: the cold files are untouched"
    assert _erase(db, "--pending") == [], "still held: nothing to do"

    result = CliRunner().invoke(cli, ["--database-url", db, "archive", "release", hold[0],
                                      "--company", COMPANY_1, "--by", "legal"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("select status from private.erasure_ledger where company_id = %s",
                            (COMPANY_1,)).fetchone() == ("done",), "the release ran the deferred database part"
        assert conn.execute("select count(*) from public.conversations where end_user_id = %s and company_id = %s",
                            (END_USER, COMPANY_1)).fetchone() == (0,)
    done = _erase(db, "--pending")
    assert [d["company_id"] for d in done] == [COMPANY_1] and done[0]["cold_files"]["exports"] == 1
    assert not _conversation_of(_rows(exports), COMPANY_1, END_USER)
    assert _conversation_of(_rows(exports), COMPANY_2, END_USER)
    for export in exports:
        verify_export(export)
