"""The ledger and the plan (issue 10): a dry-run plan psql runs to the same result as
migrate, render settings recorded and reported as such, repair and baseline like
Flyway, status for CI (--exit-code, a JSON summary) and errors as JSON under --json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import click
import psycopg
import pytest
from click.testing import CliRunner, Result

from neurant_db.cli import cli
from neurant_db.docs import dump_schema
from neurant_db.testdb import TestDatabase, test_cli_args

from .conftest import scratch_database, write


def run(url: str | None, *args: str, input: str | None = None) -> Result:
    base = ["--database-url", url] if url else []
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False, input=input)


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def tables(url: str) -> set[str]:
    return {r[0] for r in rows(url, "select tablename from pg_tables where schemaname = 'public'")}


def ledger(url: str) -> list[tuple[Any, ...]]:
    return rows(url, "select version, name, checksum, rollback_checksum, settings, kind "
                     "from neurant_meta.schema_migrations order by version")


def psql() -> Path:
    from neurant_db.server import embedded_sharedir

    path = embedded_sharedir().parent / "bin" / "psql"
    if not path.is_file():
        pytest.skip(f"no psql next to the embedded server ({path})")
    return path


def run_psql(url: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(psql()), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
                          input=script, capture_output=True, text=True, timeout=300)


def with_password(url: str, server_password: str | None) -> tuple[str, str]:
    """The URL with a password in it and that password: the server's own when it has one
    (kept out of the harness's URLs: neurant_db.passfile), else one trust auth ignores."""
    parts = urlsplit(url)
    password = server_password or "s3cret-pw"
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}")), password


# --- migrate --dry-run: a plan psql runs to the same result as migrate -----------------

def test_the_dry_run_plan_run_by_psql_leaves_what_migrate_leaves(sql_tree: Path, scratch_db: str,
                                                                  neurant_server: TestDatabase) -> None:
    plan = run(scratch_db, "migrate", "--dry-run")
    assert plan.exit_code == 0
    done = run_psql(scratch_db, plan.stdout)
    assert done.returncode == 0, done.stderr
    status = run(scratch_db, "status", "--json", "--exit-code")
    assert status.exit_code == 0, status.output
    summary = json.loads(status.output)["summary"]
    assert summary == {"applied": 3, "pending": 0, "drifted": 0, "missing": 0, "baselined": 0}
    assert "nothing to apply" in run(scratch_db, "migrate").output
    with scratch_database(neurant_server.url) as other:
        assert run(other, "migrate").exit_code == 0
        assert dump_schema(other) == dump_schema(scratch_db)
        assert ledger(other) == ledger(scratch_db)
    assert run(scratch_db, "rollback", "--to", "0").exit_code == 0  # yoyo reconciled from the ledger
    assert tables(scratch_db) == set()


def test_the_dry_run_plan_run_twice_stops_at_the_first_applied_migration(
        sql_tree: Path, scratch_db: str) -> None:
    plan = run(scratch_db, "migrate", "--dry-run").stdout
    assert run_psql(scratch_db, plan).returncode == 0
    again = run_psql(scratch_db, plan)
    assert again.returncode != 0 and "0010_widgets is already applied" in again.stderr
    assert [r[0] for r in ledger(scratch_db)] == [10, 20, 30]


def test_the_dry_run_plan_waits_for_no_one_while_a_migrate_holds_the_lock(
        sql_tree: Path, scratch_db: str) -> None:
    plan = run(scratch_db, "migrate", "--dry-run").stdout
    with psycopg.connect(scratch_db) as conn:
        conn.execute("create schema neurant_meta; create table neurant_meta.migration_lock "
                     "(id boolean primary key default true check (id)); "
                     "insert into neurant_meta.migration_lock values (true)")
        conn.commit()
        conn.execute("select id from neurant_meta.migration_lock for update")  # a run in progress
        refused = run_psql(scratch_db, plan)
    assert refused.returncode != 0 and "could not obtain lock" in refused.stderr
    assert tables(scratch_db) == set()


def test_the_dry_run_plan_of_the_real_schema_builds_the_schema_migrate_builds(
        neurant_server: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = test_cli_args()
    with scratch_database(neurant_server.url) as by_psql, scratch_database(neurant_server.url) as by_migrate:
        plan = run(by_psql, *args, "migrate", "--dry-run")
        assert plan.exit_code == 0
        done = run_psql(by_psql, plan.stdout)
        assert done.returncode == 0, done.stderr[-2000:]
        status = run(by_psql, *args, "status", "--exit-code")
        assert status.exit_code == 0, status.output[-2000:]
        assert run(by_migrate, *args, "migrate").exit_code == 0
        assert dump_schema(by_psql) == dump_schema(by_migrate)
        assert ledger(by_psql) == ledger(by_migrate)


# --- render settings in the ledger ---------------------------------------------------

def test_the_ledger_records_the_render_settings_of_each_migration(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "--embedding-dimensions", "42", "migrate").exit_code == 0
    recorded = {r[0]: r[4] for r in ledger(scratch_db)}
    assert recorded[30]["embedding_dimensions"] == 42
    assert recorded[30]["profile"] == "vanilla" and recorded[30]["vector_schema"] == "extensions"


def test_a_settings_change_is_reported_as_a_settings_change_not_an_edited_file(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "--embedding-dimensions", "42", "migrate").exit_code == 0
    status = run(scratch_db, "--embedding-dimensions", "8", "status", "--json")
    assert status.exit_code == 5
    states = {s["id"]: s for s in json.loads(status.output)["migrations"]}
    assert states["0010_widgets"]["state"] == "applied"  # does not use the setting
    assert states["0030_gadgets"]["state"] == "drifted"
    assert states["0030_gadgets"]["cause"] == "settings"
    assert "rendered with embedding_dimensions=42, now 8" in states["0030_gadgets"]["detail"]
    text = run(scratch_db, "--embedding-dimensions", "8", "status")
    assert "rendered with embedding_dimensions=42, now 8" in text.output
    blocked = run(scratch_db, "--embedding-dimensions", "8", "migrate")
    assert blocked.exit_code == 5
    assert "other render settings" in blocked.output
    assert "rendered with embedding_dimensions=42, now 8" in blocked.output
    assert "changed since they were applied" not in blocked.output


def test_an_edited_file_is_reported_as_edited_even_when_the_settings_changed_too(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "--embedding-dimensions", "42", "migrate").exit_code == 0
    path = sql_tree / "schema/0030_gadgets.sql"
    path.write_text(path.read_text() + "-- edited\n")
    status = run(scratch_db, "--embedding-dimensions", "8", "status", "--json")
    gadgets = {s["id"]: s for s in json.loads(status.output)["migrations"]}["0030_gadgets"]
    assert gadgets["cause"] == "edited" and "the file changed" in gadgets["detail"]
    blocked = run(scratch_db, "--embedding-dimensions", "8", "migrate")
    assert blocked.exit_code == 5 and "changed since they were applied" in blocked.output


# --- repair ----------------------------------------------------------------------------

def test_repair_requires_a_reason(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    result = run(scratch_db, "repair")
    assert result.exit_code == 2 and "--reason" in result.output
    blank = run(scratch_db, "repair", "--reason", "  ")
    assert blank.exit_code == 2 and "--reason" in blank.output


def test_repair_refuses_when_nothing_drifted(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    result = run(scratch_db, "repair", "--reason", "why not")
    assert result.exit_code == 2 and "nothing to repair" in result.output
    assert rows(scratch_db, "select count(*) from neurant_meta.ledger_history") == [(0,)]


def test_repair_accepts_the_current_checksum_and_keeps_the_old_one_in_the_history(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    before = ledger(scratch_db)
    for rel in ("schema/0010_widgets.sql", "schema/0030_gadgets.sql"):
        path = sql_tree / rel
        path.write_text(path.read_text() + "-- comment fixed\n")
    not_drifted = run(scratch_db, "repair", "20", "--reason", "typo")
    assert not_drifted.exit_code == 2 and "0020" in not_drifted.output
    result = run(scratch_db, "repair", "10", "--reason", "comment typo, no schema change")
    assert result.exit_code == 0, result.output
    states = {s["id"]: s["state"] for s in json.loads(run(scratch_db, "status", "--json").output)["migrations"]}
    assert states == {"0010_widgets": "applied", "0020_widget_count": "applied", "0030_gadgets": "drifted"}
    history = rows(scratch_db, "select version, action, old_checksum, new_checksum, reason, performed_by, "
                               "performed_at is not null from neurant_meta.ledger_history")
    assert len(history) == 1
    version, action, old, new, reason, who, when = history[0]
    assert (version, action, reason, when) == (10, "repair", "comment typo, no schema change", True)
    assert old == before[0][2] and new != old and new == ledger(scratch_db)[0][2]
    assert who == rows(scratch_db, "select current_user")[0][0]
    assert run(scratch_db, "repair", "--reason", "the rest").exit_code == 0
    assert run(scratch_db, "status", "--exit-code").exit_code == 0


# --- baseline --------------------------------------------------------------------------

def test_baseline_marks_migrations_applied_without_running_them(sql_tree: Path, scratch_db: str) -> None:
    with psycopg.connect(scratch_db) as conn:  # a database built by hand from the same SQL
        conn.execute((sql_tree / "schema/0010_widgets.sql").read_text())
        conn.execute((sql_tree / "functions/0020_widget_count.sql").read_text())
    result = run(scratch_db, "baseline", "20", "--yes", "--reason", "built by hand")
    assert result.exit_code == 0, result.output
    assert [(r[0], r[5]) for r in ledger(scratch_db)] == [(10, "baselined"), (20, "baselined")]
    assert rows(scratch_db, "select version, action, reason from neurant_meta.ledger_history "
                            "order by id") == [(10, "baseline", "built by hand"), (20, "baseline", "built by hand")]
    status = json.loads(run(scratch_db, "status", "--json").output)
    assert status["summary"]["baselined"] == 2 and status["summary"]["pending"] == 1
    applied = run(scratch_db, "migrate")
    assert applied.exit_code == 0 and "0030_gadgets" in applied.output and "0010" not in applied.output
    assert tables(scratch_db) == {"widgets", "gadgets"}


def test_baseline_refuses_a_database_that_already_has_a_ledger(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate", "--to", "10").exit_code == 0
    result = run(scratch_db, "baseline", "20", "--yes")
    assert result.exit_code == 2 and "already has a migration ledger" in result.output
    assert [r[0] for r in ledger(scratch_db)] == [10]


def test_baseline_asks_before_marking_anything(sql_tree: Path, scratch_db: str) -> None:
    with psycopg.connect(scratch_db) as conn:  # the objects of 0010, built by hand
        conn.execute((sql_tree / "schema/0010_widgets.sql").read_text())
    declined = run(scratch_db, "baseline", "10", input="n\n")
    dbname = urlsplit(scratch_db).path.lstrip("/")
    assert declined.exit_code != 0 and f"dbname={dbname}" in declined.output
    assert rows(scratch_db, "select to_regnamespace('neurant_meta')") == [(None,)]  # nothing written
    refused = run(scratch_db, "baseline", "20", "--yes")  # 0020's function was never built
    assert refused.exit_code == 2 and "function public.widget_count()" in refused.output
    assert run(scratch_db, "baseline", "10", input="y\n").exit_code == 0
    assert [r[0] for r in ledger(scratch_db)] == [10]
    unknown = run(scratch_db, "baseline", "15", "--yes")
    assert unknown.exit_code == 2 and "no migration has that version" in unknown.output


# --- status for CI -----------------------------------------------------------------------

def test_status_exit_code_is_non_zero_while_anything_is_pending_drifted_or_missing(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "status").exit_code == 0  # pending alone is not an error without the flag
    assert run(scratch_db, "status", "--exit-code").exit_code == 10
    assert run(scratch_db, "migrate").exit_code == 0
    assert run(scratch_db, "status", "--exit-code").exit_code == 0
    (sql_tree / "schema/0030_gadgets.sql").unlink()
    (sql_tree / "schema/0030_gadgets.rollback.sql").unlink()
    assert run(scratch_db, "status", "--exit-code").exit_code == 5  # missing
    write(sql_tree, "schema/0030_gadgets.sql", "create table public.gadgets (id int primary key);\n",
          "drop table public.gadgets;\n")
    assert run(scratch_db, "status", "--exit-code").exit_code == 5  # drifted


def test_status_json_has_a_summary_the_settings_and_the_database_without_its_password(
        sql_tree: Path, scratch_db: str, neurant_server: TestDatabase) -> None:
    url, password = with_password(scratch_db, neurant_server.server_password)
    assert run(url, "migrate", "--to", "20").exit_code == 0
    result = run(url, "--embedding-dimensions", "8", "status", "--json")
    assert result.exit_code == 0 and password not in result.output
    data = json.loads(result.output)
    assert data["summary"] == {"applied": 2, "pending": 1, "drifted": 0, "missing": 0, "baselined": 0}
    assert data["settings"]["embedding_dimensions"] == 8
    assert f"dbname={urlsplit(scratch_db).path.lstrip('/')}" in data["database"] and "***" in data["database"]
    assert [s["state"] for s in data["migrations"]] == ["applied", "applied", "pending"]


# --- --json on every command, errors as JSON -------------------------------------------

def test_migrate_rollback_and_render_speak_json(sql_tree: Path, scratch_db: str) -> None:
    planned = json.loads(run(scratch_db, "migrate", "--dry-run", "--json").stdout)
    assert planned["dry_run"] is True and planned["planned"] == ["0010_widgets", "0020_widget_count",
                                                                 "0030_gadgets"]
    assert "begin;" in planned["script"]
    applied = run(scratch_db, "migrate", "--json")
    assert applied.exit_code == 0 and json.loads(applied.stdout)["applied"] == planned["planned"]
    back = run(scratch_db, "rollback", "--steps", "1", "--json")
    assert back.exit_code == 0 and json.loads(back.output)["rolled_back"] == ["0030_gadgets"]
    rendered = json.loads(run(None, "--embedding-dimensions", "7", "render", "--json").output)
    assert rendered["settings"]["embedding_dimensions"] == 7
    assert [m["id"] for m in rendered["migrations"]] == planned["planned"]
    assert "default 7" in rendered["migrations"][2]["apply_sql"]


def test_jobs_list_and_archive_holds_speak_json(neurant_db: TestDatabase) -> None:
    jobs = json.loads(run(None, "jobs", "list", "--json").output)
    assert {j["job"] for j in jobs} >= {"archive", "retention", "cold-export"}
    holds = run(neurant_db.url, "archive", "holds", "--all", "--json")
    assert holds.exit_code == 0, holds.output
    assert isinstance(json.loads(holds.output), list)


def error_of(result: Result) -> dict[str, Any]:
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)
    assert list(data) == ["error"]
    error: dict[str, Any] = data["error"]
    assert set(error) == {"code", "message", "hint", "exit_code"}
    assert error["exit_code"] == result.exit_code
    return error


def test_errors_under_json_are_one_json_object_with_the_same_exit_code(
        sql_tree: Path, scratch_db: str) -> None:
    unreachable = run("postgresql://nobody:secret@127.0.0.1:1/nothing", "status", "--json")
    error = error_of(unreachable)
    assert unreachable.exit_code == 3 and error["code"] == "connection_failed"
    assert "secret" not in unreachable.output
    bad = error_of(run(scratch_db, "rollback", "--json"))
    assert bad["code"] == "bad_argument" and bad["exit_code"] == 2
    assert run(scratch_db, "migrate", "--to", "10").exit_code == 0
    path = sql_tree / "schema/0010_widgets.sql"
    path.write_text(path.read_text() + "-- edited\n")
    drift = error_of(run(scratch_db, "migrate", "--json"))
    assert drift["code"] == "drift_detected" and drift["exit_code"] == 5 and drift["hint"]
    usage = error_of(run(scratch_db, "repair", "--json"))
    assert usage["code"] == "usage_error" and "--reason" in usage["message"]
    write(sql_tree, "schema/0040_broken.sql", "select * from public.nope;\n", "select 1;\n")
    path.write_text(path.read_text().replace("-- edited\n", ""))
    failed = error_of(run(scratch_db, "migrate", "--json"))
    assert failed["code"] == "migration_failed" and failed["exit_code"] == 6
    with psycopg.connect(scratch_db) as conn:
        conn.execute("drop schema neurant_meta cascade; create schema neurant_meta; "
                     "create table neurant_meta.schema_migrations (version text)")
    database = error_of(run(scratch_db, "status", "--json"))
    assert database["code"] == "database_error" and database["exit_code"] == 1


def test_repair_refuses_a_settings_change_the_database_does_not_have(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "--embedding-dimensions", "42", "migrate").exit_code == 0
    result = run(scratch_db, "--embedding-dimensions", "8", "repair", "--reason", "new model")
    assert result.exit_code == 2
    assert "rendered with embedding_dimensions=42, now 8" in result.output
    assert [r[4]["embedding_dimensions"] for r in ledger(scratch_db)] == [42, 42, 42]


def test_a_changed_rollback_is_reported_as_such(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    (sql_tree / "schema/0010_widgets.rollback.sql").write_text("drop table public.widgets cascade;\n")
    status = json.loads(run(scratch_db, "status", "--json").output)
    widgets = {s["id"]: s for s in status["migrations"]}["0010_widgets"]
    assert widgets["cause"] == "edited" and "rollback file changed" in widgets["detail"]


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
    return found


def test_every_json_option_reports_errors_as_json() -> None:
    from neurant_db.cli.json_output import json_option

    marker = json_option()(lambda: None).__click_params__[0].callback  # type: ignore[attr-defined]
    plain = [name for name, command in _commands(cli) for p in command.params
             if "--json" in p.opts and p.callback is not marker]
    assert plain == [], "declare --json with cli.json_output.json_option so errors come out as JSON"
    with_json = {name for name, command in _commands(cli) if any("--json" in p.opts for p in command.params)}
    assert {"render", "migrate", "rollback", "status", "repair", "baseline", "jobs list",
            "archive holds"} <= with_json
