"""`neurant-db upgrade-check`: the upgrade from a release to the working tree is run on a
scratch database loaded with the release's fixtures, and any lost table, row or column
with data, or undeclared change of values, fails it. Tiny git repositories built in
tmp_path play the release (tag v1) and the working tree (uncommitted files)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from neurant_db.cli import cli
from neurant_db.errors import BadArgument
from neurant_db.paths import sql_root
from neurant_db.releases import newest_release
from neurant_db.testdb import TestDatabase, test_cli_args, test_settings
from neurant_db.upgrade_check import (
    UpgradeCheckError,
    UpgradeReport,
    release_ref,
    run_upgrade_check,
)

from .conftest import git, project_tree, write

NO_RELEASE = "no release recorded in releases.json yet (the upgrade path is tested from 0.1.0 on)"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Release v1: widgets (three rows from its fixtures) and an empty-column table."""
    root = project_tree(tmp_path / "repo", {"schema/0010_widgets.sql": (
        "-- widgets\ncreate table public.widgets (id int primary key, name text, legacy text,"
        " updated_at timestamptz not null default now());\n",
        "drop table public.widgets;\n")},
        "insert into public.widgets (id, name) values (1, 'one'), (2, 'two'), (3, 'three');\n", monkeypatch)
    git(root, "tag", "v1")
    return root


def check(server: TestDatabase, root: Path, ref: str = "v1") -> UpgradeReport:
    return run_upgrade_check(server.target, ref, test_settings(), root=root)


def status_of(report: UpgradeReport) -> dict[str, tuple[int | None, int | None, str]]:
    return {t.table: (t.rows_before, t.rows_after, t.status) for t in report.tables}


def databases(server: TestDatabase) -> set[str]:
    with psycopg.connect(server.url) as conn:
        return {r[0] for r in conn.execute("select datname from pg_database").fetchall()}


def cli_check(server: TestDatabase, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--database-url", server.url, *test_cli_args(), "upgrade-check", *args],
                              catch_exceptions=False)


def test_a_working_tree_adding_a_column_and_a_table_keeps_every_row(
        neurant_server: TestDatabase, repo: Path) -> None:
    write(repo, "schema/0020_widget_colour.sql",
          "-- colours\nalter table public.widgets add column colour text not null default 'red';\n"
          "create table public.gadgets (id int primary key);\n",
          "drop table public.gadgets;\nalter table public.widgets drop column colour;\n")
    before = databases(neurant_server)
    report = check(neurant_server, repo)
    assert report.ok
    assert report.applied == ["0020_widget_colour"]
    assert report.fixtures == ["0100_fixtures.sql"]
    assert status_of(report) == {"public.widgets": (3, 3, "ok"), "public.gadgets": (None, 0, "new")}
    assert "new column(s): colour" in report.tables[1].details
    assert databases(neurant_server) == before, "the scratch database is dropped"


def test_an_upgrade_applying_nothing_reports_identical_order_independent_table_hashes(
        neurant_server: TestDatabase, repo: Path) -> None:
    report = check(neurant_server, repo)
    assert report.ok and report.applied == []
    [widgets] = report.tables
    assert widgets.hash_before == widgets.hash_after
    assert widgets.hash_before is not None and len(widgets.hash_before) == 64


def test_a_migration_deleting_rows_is_reported_as_a_loss_and_exits_non_zero(
        neurant_server: TestDatabase, repo: Path) -> None:
    write(repo, "schema/0020_purge.sql", "-- purge\ndelete from public.widgets where id > 1;\n", "select 1;\n")
    result = cli_check(neurant_server, "--from", "v1")
    assert result.exit_code == 1, result.output
    assert "public.widgets       3       1  LOST     2 rows lost" in result.output
    assert "LOSES OR CHANGES DATA in public.widgets" in result.output


def test_dropping_a_column_with_data_is_a_loss_but_a_column_without_data_is_not(
        neurant_server: TestDatabase, repo: Path) -> None:
    write(repo, "schema/0020_drop_name.sql", "-- drop\nalter table public.widgets drop column name;\n",
          "alter table public.widgets add column name text;\n")
    report = check(neurant_server, repo)
    assert not report.ok
    assert status_of(report)["public.widgets"] == (3, 3, "lost")
    assert report.tables[0].details == ("column name dropped with data in 3 rows",)

    (repo / "schema/0020_drop_name.sql").unlink()
    (repo / "schema/0020_drop_name.rollback.sql").unlink()
    write(repo, "schema/0020_drop_legacy.sql", "-- drop\nalter table public.widgets drop column legacy;\n",
          "alter table public.widgets add column legacy text;\n")
    report = check(neurant_server, repo)
    assert report.ok
    assert report.tables[0].details == ("column legacy dropped (it held no data)",)


def test_changed_values_fail_unless_the_migration_declares_the_rewrite_which_covers_updated_at(
        neurant_server: TestDatabase, repo: Path) -> None:
    body = "update public.widgets set name = upper(name), updated_at = updated_at + interval '1 day';\n"
    write(repo, "schema/0020_upper.sql", "-- shout\n" + body, "update public.widgets set name = lower(name);\n")
    result = cli_check(neurant_server, "--from", "v1", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["tables"][0]["status"] == "changed"
    assert report["tables"][0]["details"] == ["3 rows changed in name, updated_at (no migration declares it)"]

    (repo / "schema/0020_upper.sql").write_text(
        "-- shout\n-- upgrade: rewrites public.widgets.name\n" + body, encoding="utf-8")
    report_ok = check(neurant_server, repo)
    assert report_ok.ok
    assert report_ok.tables[0].details == ("column name rewritten (declared by 0020_upper)",)


def test_a_migration_leaving_rows_that_break_a_not_valid_constraint_fails_doctor_data(
        neurant_server: TestDatabase, repo: Path) -> None:
    write(repo, "schema/0020_short_names.sql",
          "-- short names, for new rows only\nalter table public.widgets add constraint widgets_name_short"
          " check (length(name) < 4) not valid;\n",
          "alter table public.widgets drop constraint widgets_name_short;\n")
    result = cli_check(neurant_server, "--from", "v1")
    assert result.exit_code == 1, result.output
    assert "public.widgets       3       3  ok" in result.output, "no row lost or changed"
    assert "doctor --data ERROR: data.not_valid public.widgets.widgets_name_short: NOT VALID and 1 existing" \
        in result.output
    assert "LEAVES THE DATA INCONSISTENT: data.not_valid" in result.output


def test_a_dropped_table_is_lost_unless_declared(neurant_server: TestDatabase, repo: Path) -> None:
    write(repo, "schema/0020_no_widgets.sql", "-- gone\ndrop table public.widgets;\n",
          "create table public.widgets (id int primary key, name text, legacy text, updated_at timestamptz);\n")
    assert status_of(check(neurant_server, repo)) == {"public.widgets": (3, None, "lost")}
    (repo / "schema/0020_no_widgets.sql").write_text(
        "-- gone\n-- upgrade: drops public.widgets\ndrop table public.widgets;\n", encoding="utf-8")
    report = check(neurant_server, repo)
    assert report.ok
    assert status_of(report) == {"public.widgets": (3, None, "dropped")}


def test_a_malformed_declaration_is_refused(neurant_server: TestDatabase, repo: Path) -> None:
    write(repo, "schema/0020_x.sql", "-- x\n-- upgrade: rewrites widgets\nselect 1;\n", "select 1;\n")
    result = cli_check(neurant_server, "--from", "v1")
    assert result.exit_code == 2
    assert "malformed upgrade declarations" in result.output
    assert "0020_x: `-- upgrade: rewrites widgets`" in result.output


def test_a_failing_working_tree_migration_names_the_phase_and_leaves_no_database(
        neurant_server: TestDatabase, repo: Path) -> None:
    write(repo, "schema/0020_broken.sql", "-- broken\nalter table public.nope add column x int;\n", "select 1;\n")
    before = databases(neurant_server)
    result = cli_check(neurant_server, "--from", "v1")
    assert result.exit_code == 6
    assert "error: upgrading from v1 to the working tree: apply of 0020_broken failed" in result.output
    assert "Traceback" not in result.output
    assert databases(neurant_server) == before


def test_an_unknown_ref_is_a_clean_error(neurant_server: TestDatabase, repo: Path) -> None:
    result = cli_check(neurant_server, "--from", "v9")
    assert result.exit_code == 2
    assert result.output.startswith("error: --from v9: no such git ref")
    assert "Traceback" not in result.output
    with pytest.raises(BadArgument):
        check(neurant_server, repo, "--upload-pack=x")


def test_without_git_the_error_says_so(neurant_server: TestDatabase, repo: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo))
    with pytest.raises(UpgradeCheckError, match="git is not available on PATH"):
        check(neurant_server, repo)


def test_the_upgrade_from_the_newest_recorded_release_loses_nothing(neurant_server: TestDatabase) -> None:
    if newest_release() is None:
        pytest.skip(NO_RELEASE)
    # Once a release is recorded its commit must be found: release_ref raises, never skips.
    report = run_upgrade_check(neurant_server.target, release_ref(None), test_settings())
    failed = [t.as_dict() for t in report.tables if t.failed]
    assert report.ok, (failed, [f.as_dict() for f in report.data_errors])
    assert report.data_errors == [], "doctor --data finds no new inconsistency after the upgrade"
    empty = [t.table for t in report.tables if t.status != "new" and not t.rows_before]
    assert not empty, f"the release's fixtures leave these tables empty, so their upgrade is untested: {empty}"


# Populated upgrades (issue 10): the real schema as the release, fixtures plus generated rows --
GENERATED_ROWS = 2000


@pytest.fixture
def real_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Release v1 = the real schema of this working tree (five folders and tests/fixtures)."""
    import shutil

    from neurant_db.paths import MIGRATION_FOLDERS

    root = tmp_path / "repo"
    for rel in (*MIGRATION_FOLDERS, "tests/fixtures"):
        shutil.copytree(sql_root() / rel, root / rel)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1")
    git(root, "tag", "v1")
    monkeypatch.setenv("NEURANT_SQL_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    return root


# The new migrations of these tests are numbered 9000 and up: above every migration the
# working tree (release v1 here) already has, whatever the ranges in use (4000 and up).
def test_a_populated_upgrade_with_an_online_index_and_a_new_column_loses_nothing(
        neurant_server: TestDatabase, real_repo: Path) -> None:
    write(real_repo, "indexes/9000_messages_sender_index.sql",
          "-- Why: messages by sender without blocking writes (domain 1, public.messages).\n"
          "-- neurant: no-transaction\n"
          "create index concurrently if not exists messages_company_sender_idx\n"
          "  on public.messages (company_id, sender_type);\n",
          "-- Why: undoes 9000_messages_sender_index.sql.\n-- neurant: no-transaction\n"
          "drop index concurrently if exists public.messages_company_sender_idx;\n")
    write(real_repo, "schema/9010_conversations_priority.sql",
          "-- Why: conversations get a priority (domain 1, public.conversations).\n"
          "alter table public.conversations add column priority smallint not null default 0;\n"
          "comment on column public.conversations.priority is 'Triage priority; 0 is normal.';\n",
          "-- Why: undoes 9010_conversations_priority.sql.\n"
          "alter table public.conversations drop column priority;\n")
    result = cli_check(neurant_server, "--from", "v1", "--rows", str(GENERATED_ROWS), "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, [t for t in report["tables"] if t["status"] not in ("ok", "new")]
    assert report["applied"] == ["9000_messages_sender_index", "9010_conversations_priority"]
    assert GENERATED_ROWS <= sum(report["generated_rows"].values()) <= 2 * GENERATED_ROWS
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["public.messages"]["rows_before"] >= report["generated_rows"]["public.messages"] > 1000
    assert tables["public.conversations"]["status"] == "ok"
    assert "new column(s): priority" in tables["public.conversations"]["details"]
    assert report["counts"].get("lost", 0) == 0 and report["counts"].get("changed", 0) == 0
    assert [f for f in report["data_findings"] if f["level"] == "error"] == [], \
        "doctor --data: the populated upgrade leaves counters, usage and keys consistent"


def test_the_loss_of_generated_rows_is_caught_at_scale(neurant_server: TestDatabase, real_repo: Path) -> None:
    write(real_repo, "schema/9010_purge_old_messages.sql",
          "-- Why: an upgrade that silently deletes data (domain 1, public.messages).\n"
          "delete from public.messages where content like 'message 3 of %';\n",
          "-- Why: undoes 9010_purge_old_messages.sql.\nselect 1;\n")
    report = run_upgrade_check(neurant_server.target, "v1", test_settings(), root=real_repo, rows=GENERATED_ROWS)
    assert not report.ok
    messages = next(t for t in report.tables if t.table == "public.messages")
    assert messages.status == "lost"
    conversations = report.generated["public.conversations"]
    assert f"{conversations} rows lost" in messages.details
