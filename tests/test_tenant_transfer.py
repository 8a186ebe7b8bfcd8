"""Tenant export, import and delete (`neurant-db tenant`, runner/neurant_db/tenant_transfer.py).

One populated source (the test fixtures' companies A and B, the generated data of the
lifecycle demo with archived rows and cold exports), exported once per module for company A
and for a generated company; both snapshots imported into one fresh database. The tests read
those shared results: every tenant table of the registry is in the export, an export holds
nothing of another tenant, the round trip gives identical hashes, the counters and usage stay
equal (doctor --data clean), and each refusal (newer schema, tampered file, missing table, id
collision with the same or another tenant, a non-owner import mode, a changed tenant, a
legal hold) leaves nothing half-done.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.cold_storage import cold_export
from neurant_db.database import DatabaseTarget
from neurant_db.doctor_data import run_data_checks
from neurant_db.erasure import subject_ref
from neurant_db.jobs import call_job
from neurant_db.lifecycle_demo import load_demo
from neurant_db.table_registry import load
from neurant_db.tenant_transfer import (
    MANIFEST,
    TenantTransferError,
    delete_tenant,
    export_tenant,
    import_tenant,
    read_manifest,
    sha256_file,
    table_hashes,
    tenant_entries,
)
from neurant_db.testdb import TestDatabase, commit_fixtures, test_settings

from .conftest import migrated_template, scratch_database

COMPANY_A = "aaaaaaaa-0000-0000-0000-000000000000"
COMPANY_B = "bbbbbbbb-0000-0000-0000-000000000000"
GENERATED_1 = "00000000-0000-4000-9000-000000000001"
GENERATED_2 = "00000000-0000-4000-9000-000000000002"
FAR_FUTURE = datetime(2040, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def template(neurant_server: TestDatabase) -> Iterator[str]:
    with migrated_template(neurant_server.url, "tenant_tpl") as name:
        yield name


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tenant")


@pytest.fixture(scope="module")
def source(neurant_server: TestDatabase, template: str, work: Path) -> Iterator[str]:
    """Fixtures A and B; two generated companies whose old conversations went to the archive
    and partly to cold storage."""
    with scratch_database(neurant_server.url, template=template) as url:
        commit_fixtures(url)
        with psycopg.connect(url, autocommit=True) as conn:
            load_demo(conn, companies=2, conversations=12, messages=3)
            call_job(conn, "archive")
        cold_export(DatabaseTarget(url), work / "cold", as_of=FAR_FUTURE, batch_size=5, max_batches=1)
        yield url


@pytest.fixture(scope="module")
def exports(source: str, work: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    out = {}
    for company in (COMPANY_A, GENERATED_1):
        directory = work / f"export-{company}"
        out[company] = (directory, export_tenant(DatabaseTarget(source), company, directory))
    return out


@pytest.fixture(scope="module")
def target(neurant_server: TestDatabase, template: str,
           exports: dict[str, tuple[Path, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    with scratch_database(neurant_server.url, template=template) as url:
        reports = {company: import_tenant(DatabaseTarget(url), directory)
                   for company, (directory, _) in exports.items()}
        yield url, reports


def _rows(directory: Path, manifest: dict[str, Any], table: str) -> list[list[str]]:
    text = (directory / manifest["tables"][table]["file"]).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


def _copy(directory: Path, to: Path) -> Path:
    shutil.copytree(directory, to)
    return to


def _rewrite(directory: Path, edit: Any) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    edit(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {e.name: conn.execute(f"select count(*) from {e.name}").fetchone()[0]  # type: ignore[index]
                for e in tenant_entries(load(), test_settings().profile)}


def _cli(url: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--database-url", url, "tenant", *args])


def test_export_covers_every_tenant_table_of_the_registry(exports: dict[str, tuple[Path, dict[str, Any]]],
                                                         source: str) -> None:
    """The export's tables are the registry's tenant tables, and, by an independent oracle,
    every table of the live catalog that has a company_id (plus public.companies): a tenant
    table added later and left out fails here. The list is the registry's, so a new
    registry entry is exported with no change to the exporter (a registry with one more)."""
    registry = load()
    expected = [e.name for e in tenant_entries(registry, test_settings().profile)]
    with psycopg.connect(source) as conn:
        catalog = {r[0] for r in conn.execute(
            "select format('%s.%s', n.nspname, c.relname) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace "
            "join pg_attribute a on a.attrelid = c.oid and a.attname = 'company_id' and not a.attisdropped "
            "where c.relkind in ('r', 'p') and not c.relispartition "
            "and n.nspname in ('public', 'private', 'archive')").fetchall()}
    assert catalog | {"public.companies"} == set(expected)
    for _, manifest in exports.values():
        assert list(manifest["tables"]) == expected
        assert manifest["schema"]["newest_migration"] >= 4400
        assert manifest["profile"] == test_settings().profile
    extra = replace(registry["public.messages"], name="public.tenant_table_added_later", since=9999)
    grown = replace(registry, entries=(*registry.entries, extra))
    assert "public.tenant_table_added_later" in [e.name for e in tenant_entries(grown, "vanilla")]
    assert all(e.tenant for e in tenant_entries(registry, "vanilla"))


def test_a_snapshot_is_readable_by_its_owner_only(exports: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    """It holds end users' messages, identities and integration credentials: the folder is
    0700 and every file 0600, whatever the umask."""
    for directory, _ in exports.values():
        assert directory.stat().st_mode & 0o777 == 0o700
        files = [f for f in directory.rglob("*") if f.is_file()]
        assert len(files) >= 30
        assert {f.stat().st_mode & 0o777 for f in files} == {0o600}
        assert {d.stat().st_mode & 0o777 for d in directory.rglob("*") if d.is_dir()} <= {0o700}


def test_export_holds_rows_of_its_tenant_only(exports: dict[str, tuple[Path, dict[str, Any]]], source: str) -> None:
    """Every row of every file carries the exported company's key (fixtures: A without B;
    generated data: company 1 without company 2), and the files are what the manifest says."""
    for company, (directory, manifest) in exports.items():
        total = 0
        for table, entry in manifest["tables"].items():
            key = entry["columns"].index(entry["key"])
            rows = _rows(directory, manifest, table)
            assert len(rows) == entry["rows"]
            assert {r[key] for r in rows} <= {company}, table
            assert sha256_file(directory / entry["file"]) == entry["sha256"]
            total += len(rows)
        text = "".join(p.read_text() for p in directory.glob("*.tsv"))
        other = COMPANY_B if company == COMPANY_A else GENERATED_2
        assert other not in text
        assert total > 0
    # the generated company has archived rows and cold exports; the identities of A's members
    _, generated = exports[GENERATED_1]
    assert generated["tables"]["archive.messages_archived"]["rows"] > 0
    assert any(e["manifest"] for e in generated["cold_exports"])  # unreachable ones are listed without
    _, manifest_a = exports[COMPANY_A]
    with psycopg.connect(source) as conn:
        members = conn.execute("select count(distinct auth_user_id) from public.users where company_id = %s",
                               (COMPANY_A,)).fetchone()
    assert manifest_a["global"]["auth.users"]["rows"] == (members[0] if members else -1)


# rule: tenant-transfer (docs/rules.md)
def test_round_trip_gives_identical_hashes(target: tuple[str, dict[str, Any]],
                                          exports: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    url, reports = target
    for company, (_, manifest) in exports.items():
        assert reports[company]["verified"]
        assert table_hashes(DatabaseTarget(url), company, manifest) == {
            t: (e["rows"], e["sha256"]) for t, e in manifest["tables"].items()}


def test_import_keeps_counters_usage_and_escalations(target: tuple[str, dict[str, Any]], source: str) -> None:
    """No bookkeeping ran twice: counters, usage, conversation activity and escalations as in
    the source (they are in the hashed files too), and doctor --data finds nothing."""
    url, _ = target
    query = ("select c.current_user_count, c.current_chatbot_count, c.current_document_count, "
             "(select sum(u.message_count) from public.company_message_usage u where u.company_id = c.id), "
             "(select count(*) from public.hitl_escalations e where e.company_id = c.id), "
             "(select max(v.last_message_at) from public.conversations v where v.company_id = c.id) "
             "from public.companies c where c.id = %s")
    for company in (COMPANY_A, GENERATED_1):
        with psycopg.connect(source) as s, psycopg.connect(url) as t:
            assert s.execute(query, (company,)).fetchone() == t.execute(query, (company,)).fetchone()
    with psycopg.connect(url, autocommit=True) as conn:
        findings = [f for f in run_data_checks(conn) if f.level == "error"]
    assert findings == []


def test_import_refuses_an_existing_tenant_and_loads_nothing(
        target: tuple[str, dict[str, Any]], exports: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    url, _ = target
    before = _counts(url)
    result = _cli(url, "import", str(exports[COMPANY_A][0]))
    assert result.exit_code != 0 and "already exists" in result.output and "Traceback" not in result.output
    assert _counts(url) == before


def test_import_cannot_overwrite_another_tenants_rows(
        target: tuple[str, dict[str, Any]], exports: dict[str, tuple[Path, dict[str, Any]]], work: Path) -> None:
    """A snapshot of a new company whose members are another tenant's identities (the
    unique key of users.auth_user_id): refused as a collision, nothing loaded."""
    url, _ = target
    directory = _copy(exports[COMPANY_A][0], work / "collide")
    clone = "cccccccc-0000-0000-0000-00000000c10e"
    manifest = json.loads((directory / MANIFEST).read_text())
    for entry in manifest["tables"].values():
        path = directory / entry["file"]
        path.write_text(path.read_text().replace(COMPANY_A, clone))
        entry["sha256"] = sha256_file(path)
    manifest["company"] = clone
    (directory / MANIFEST).write_text(json.dumps(manifest))
    before = _counts(url)
    with pytest.raises(TenantTransferError, match="collision"):
        import_tenant(DatabaseTarget(url), directory)
    assert _counts(url) == before


@pytest.mark.parametrize(("damage", "message"), [
    ("tamper", "does not match its sha256"),
    ("missing_table", "missing from the manifest"),
    ("missing_file", "is missing from the export"),
    ("newer_schema", "newer schema"),
])
def test_import_refuses_a_bad_snapshot(damage: str, message: str, neurant_server: TestDatabase, template: str,
                                       exports: dict[str, tuple[Path, dict[str, Any]]], work: Path) -> None:
    directory = _copy(exports[COMPANY_A][0], work / f"bad-{damage}")
    if damage == "tamper":
        path = directory / "public.messages.tsv"
        path.write_text(path.read_text().replace("refund", "refunD", 1))
    elif damage == "missing_table":
        _rewrite(directory, lambda m: m["tables"].pop("public.message_reactions"))
    elif damage == "missing_file":
        (directory / "public.conversations.tsv").unlink()
    else:
        _rewrite(directory, lambda m: m["schema"]["applied"].append(9999))
    with scratch_database(neurant_server.url, template=template) as url:
        result = _cli(url, "import", str(directory))
        assert result.exit_code != 0, result.output
        assert message in result.output and "Traceback" not in result.output
        assert not any(_counts(url).values())


def test_import_accepts_a_snapshot_of_an_older_schema(neurant_server: TestDatabase, template: str,
                                                      exports: dict[str, tuple[Path, dict[str, Any]]],
                                                      work: Path) -> None:
    """A target with migrations the snapshot did not have (here: the snapshot says it
    predates 4300) takes it: only a newer snapshot is refused."""
    directory = _copy(exports[COMPANY_A][0], work / "older")
    _rewrite(directory, lambda m: m["schema"]["applied"].remove(4300))
    with scratch_database(neurant_server.url, template=template) as url:
        assert import_tenant(DatabaseTarget(url), directory)["verified"]


def test_import_mode_is_refused_to_other_sessions(target: tuple[str, dict[str, Any]]) -> None:
    """neurant.tenant_import set by a session that is not the owner's: its writes fail (42501)."""
    url, _ = target
    with psycopg.connect(url) as conn:
        conn.execute("create role tenant_probe nologin")
        conn.execute("grant service_role to tenant_probe")
        conn.execute("set session authorization tenant_probe")
        conn.execute("set role service_role")
        conn.execute("set neurant.tenant_import = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only the schema owner"):
            conn.execute("update public.chatbots set name = name || '!' where company_id = %s", (COMPANY_A,))
        conn.rollback()


def test_delete_needs_an_unchanged_export_and_no_hold(target: tuple[str, dict[str, Any]], work: Path,
                                                     exports: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    """A tenant changed since its export is not deleted; nor is one under a legal hold (the
    schema's refusal, surfaced with its hint), even with a fresh export."""
    url, _ = target
    directory, _ = exports[COMPANY_A]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update public.chatbots set name = 'Renamed' where company_id = %s "
                     "and id = 'aaaaaaaa-0000-0000-0001-000000000002'", (COMPANY_A,))
        result = _cli(url, "delete", COMPANY_A, "--verified-export", str(directory))
        assert result.exit_code != 0 and "changed since the export" in result.output
        conn.execute("insert into public.legal_holds (company_id, reason, set_by) values (%s, 'audit 2026', "
                     "'aaaaaaaa-0000-0000-0000-000000000001')", (COMPANY_A,))
    fresh = work / "export-a-held"
    export_tenant(DatabaseTarget(url), COMPANY_A, fresh)
    result = _cli(url, "delete", COMPANY_A, "--verified-export", str(fresh))
    assert result.exit_code != 0 and "not deleted" in result.output and "legal hold" in result.output, result.output
    assert "Traceback" not in result.output
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from public.companies where id = %s", (COMPANY_A,)).fetchone() == (1,)


def test_delete_after_a_verified_export_reports_what_went(target: tuple[str, dict[str, Any]],
                                                          exports: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    url, _ = target
    directory, manifest = exports[GENERATED_1]
    report = delete_tenant(DatabaseTarget(url), GENERATED_1, directory)
    assert report["deleted"]["public.companies"] == 1
    assert report["deleted"]["archive.messages_archived"] == manifest["tables"]["archive.messages_archived"]["rows"]
    assert set(report["kept"]) <= {"public.audit_logs"}
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from public.companies where id = %s", (GENERATED_1,)).fetchone() == (0,)


# --- erasures made after the export, replayed on import (erasure.py, functions/4710) ----------

ERASED_LATER = "end-user-3"
LIVE_OF_ERASED = "00000000-0000-4000-c000-00000000e003"


@pytest.fixture(scope="module")
def erased_after_export(neurant_server: TestDatabase, template: str, work: Path) -> Iterator[tuple[str, Path, str]]:
    """A generated company whose end user ERASED_LATER has archived conversations and a live
    one; exported; then that end user is erased in the source. (source URL, export, ledger id)"""
    with scratch_database(neurant_server.url, template=template) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            load_demo(conn, companies=1, conversations=6, messages=2)
            call_job(conn, "archive")
            conn.execute("insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel) "
                         "values (%s, %s, '00000000-0000-4000-b000-00000000000b', %s, 'web')",
                         (GENERATED_1, LIVE_OF_ERASED, ERASED_LATER))
            conn.execute("insert into public.messages (company_id, conversation_id, sender_type, content) "
                         "values (%s, %s, 'end_user', 'I live at Calle Mayor 1')", (GENERATED_1, LIVE_OF_ERASED))
        directory = work / "export-before-erasure"
        export_tenant(DatabaseTarget(url), GENERATED_1, directory)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("select public.erase_end_user(%s, %s, 'GDPR request 2026-7')",
                               (GENERATED_1, ERASED_LATER)).fetchone()
        assert row is not None and row[0]["status"] == "done"
        yield url, directory, str(row[0]["ledger_id"])


@pytest.fixture(scope="module")
def imported_twice(neurant_server: TestDatabase, template: str, erased_after_export: tuple[str, Path, str]
                   ) -> Iterator[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    """The export imported into two fresh databases: without and with the replay."""
    source, directory, _ = erased_after_export
    with scratch_database(neurant_server.url, template=template) as plain, \
            scratch_database(neurant_server.url, template=template) as replayed:
        yield (plain, import_tenant(DatabaseTarget(plain), directory),
               replayed, import_tenant(DatabaseTarget(replayed), directory, replay_from=source))


def _of_end_user(url: str, end_user: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"select count(*) from {t} where company_id = %s and end_user_id = %s",  # type: ignore[index]
                                (GENERATED_1, end_user)).fetchone()[0]
                for t in ("public.conversations", "archive.conversations_archived")}


def _replay_cli(url: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--database-url", url, "erase", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_an_end_user_erased_after_the_export_comes_back_on_import_unless_replayed(
        imported_twice: tuple[str, dict[str, Any], str, dict[str, Any]],
        erased_after_export: tuple[str, Path, str]) -> None:
    plain, plain_report, replayed, report = imported_twice
    _, _, ledger_id = erased_after_export
    assert "erasures" not in plain_report
    back = _of_end_user(plain, ERASED_LATER)
    assert back["public.conversations"] == 1 and back["archive.conversations_archived"] >= 1  # live and archive
    # with the replay: the snapshot verified as exported first, then the erasure carried out again
    assert report["verified"] is True
    assert {k: report["erasures"][k] for k in ("entries", "replayed", "already_present", "matched_nobody")} == \
        {"entries": 1, "replayed": 1, "already_present": 0, "matched_nobody": 0}
    assert _of_end_user(replayed, ERASED_LATER) == {"public.conversations": 0, "archive.conversations_archived": 0}
    with psycopg.connect(replayed) as conn:
        assert conn.execute("select content from public.messages where conversation_id = %s",
                            (LIVE_OF_ERASED,)).fetchall() == [("[erased]",)]
        assert conn.execute("select count(*) from archive.messages_archived a join archive.conversations_archived c "
                            "on c.company_id = a.company_id and c.id = a.conversation_id "
                            "where c.end_user_id = 'erased' and a.content <> '[erased]'").fetchone() == (0,)
        assert conn.execute("select replay_of::text, status from private.erasure_ledger where replay_of is not null"
                            ).fetchall() == [(ledger_id, "done")]
        # the other end users stay
        assert conn.execute("select count(*) from archive.conversations_archived where end_user_id like 'end-user-%'"
                            ).fetchone() == (5,)


def test_replaying_twice_changes_nothing_and_a_request_matching_nobody_is_reported(
        imported_twice: tuple[str, dict[str, Any], str, dict[str, Any]],
        erased_after_export: tuple[str, Path, str], work: Path) -> None:
    _, _, replayed, _ = imported_twice
    source, directory, _ = erased_after_export
    manifest = read_manifest(directory)
    before = table_hashes(DatabaseTarget(replayed), GENERATED_1, manifest)
    again = _replay_cli(replayed, "--replay-from", source)
    assert (again["entries"], again["replayed"], again["already_present"]) == (1, 0, 1)
    assert table_hashes(DatabaseTarget(replayed), GENERATED_1, manifest) == before
    # a request whose end user is not in this database: recorded, reported, skipped next time
    nobody = work / "ledger-nobody.json"
    nobody.write_text(json.dumps({"format": "neurant-db erasure ledger", "format_version": 1, "entries": [
        {"company_id": GENERATED_1, "request": "00000000-0000-4000-f000-00000000abcd",
         "subject_ref": subject_ref(GENERATED_1, "never-here"), "reason": "GDPR request 2026-8",
         "status": "done", "requested_at": "2026-01-01"}]}))
    first = _replay_cli(replayed, "--replay-from", str(nobody))
    second = _replay_cli(replayed, "--replay-from", str(nobody))
    assert (first["matched_nobody"], second["matched_nobody"], second["already_present"]) == (1, 0, 1)
    bad = CliRunner().invoke(cli, ["--database-url", replayed, "erase", "--replay-from", str(work / "missing.json"),
                                   "--json"])
    assert bad.exit_code == 1 and "no such ledger file" in json.loads(bad.output)["error"]["message"]


def test_a_held_conversation_of_a_replayed_erasure_waits_for_its_release(
        imported_twice: tuple[str, dict[str, Any], str, dict[str, Any]],
        erased_after_export: tuple[str, Path, str], work: Path) -> None:
    plain, _, _, _ = imported_twice
    source, _, ledger_id = erased_after_export
    ledger_file = work / "erasures.json"
    assert _replay_cli(source, "--export-ledger", str(ledger_file))["entries"] == 1
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("insert into public.legal_holds (company_id, conversation_id, reason, set_by) "
                     "values (%s, %s, 'Litigation 2026-41', 'legal@example.com')", (GENERATED_1, LIVE_OF_ERASED))
    out = _replay_cli(plain, "--replay-from", str(ledger_file))
    assert (out["replayed"], out["deferred"]) == (1, 1)
    assert _of_end_user(plain, ERASED_LATER) == {"public.conversations": 1, "archive.conversations_archived": 0}
    with psycopg.connect(plain, autocommit=True) as conn:
        assert conn.execute("select status, replay_of::text from private.erasure_ledger where replay_of is not null"
                            ).fetchall() == [("deferred", ledger_id)]
        conn.execute("update public.legal_holds set released_at = now(), released_by = 'legal@example.com' "
                     "where conversation_id = %s", (LIVE_OF_ERASED,))
        assert conn.execute("select status from private.erasure_ledger where replay_of is not null"
                            ).fetchall() == [("done",)]
    assert _of_end_user(plain, ERASED_LATER) == {"public.conversations": 0, "archive.conversations_archived": 0}


def test_the_replay_ledger_and_its_file_carry_no_raw_end_user_id(
        imported_twice: tuple[str, dict[str, Any], str, dict[str, Any]],
        erased_after_export: tuple[str, Path, str], work: Path) -> None:
    _, _, replayed, _ = imported_twice
    ledger_file = work / "erasures-of-the-source.json"
    _replay_cli(erased_after_export[0], "--export-ledger", str(ledger_file))
    assert ERASED_LATER not in ledger_file.read_text()
    assert subject_ref(GENERATED_1, ERASED_LATER) in ledger_file.read_text()
    with psycopg.connect(replayed) as conn:
        rows = conn.execute("select row_to_json(l)::text from private.erasure_ledger l").fetchall()
    assert rows and not any(ERASED_LATER in r[0] for r in rows)
