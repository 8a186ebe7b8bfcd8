"""The runner through its CLI: render, dry-run, migrate, status, drift, rollback,
failures that leave nothing half-applied, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from neurant_db.cli import cli

from .conftest import write


def run(url: str | None, *args: str) -> Result:
    base = ["--database-url", url] if url else []
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select tablename from pg_tables where schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def ledger(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        if conn.execute("select to_regclass('neurant_meta.schema_migrations')").fetchone() == (None,):
            return []
        return [r[0] for r in conn.execute(
            "select version from neurant_meta.schema_migrations order by 1").fetchall()]


def test_render_lists_migrations_in_global_version_order_across_folders(sql_tree: Path) -> None:
    result = run(None, "--embedding-dimensions", "42", "render")
    assert result.exit_code == 0
    order = [line for line in result.output.splitlines() if line.startswith("-- =====")]
    assert order == ["-- ===== 0010_widgets =====", "-- ===== 0020_widget_count =====",
                     "-- ===== 0030_gadgets ====="]
    assert "dims int default 42" in result.output


def test_render_out_writes_apply_and_rollback_files(sql_tree: Path, tmp_path: Path) -> None:
    result = run(None, "render", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "0010_widgets.rollback.sql", "0010_widgets.sql", "0020_widget_count.rollback.sql",
        "0020_widget_count.sql", "0030_gadgets.rollback.sql", "0030_gadgets.sql"]


def test_a_migration_without_rollback_file_is_refused(sql_tree: Path) -> None:
    write(sql_tree, "schema/0040_orphan.sql", "create table public.orphan (id int);\n", None)
    result = run(None, "render")
    assert result.exit_code == 2
    assert "0040_orphan.sql: no rollback file" in result.output


def test_two_files_with_one_version_are_refused(sql_tree: Path) -> None:
    write(sql_tree, "functions/0010_clash.sql", "select 1;\n", "select 1;\n")
    result = run(None, "render")
    assert result.exit_code == 2
    assert "version 0010 already used by schema/0010_widgets.sql" in result.output


def test_an_unknown_template_variable_is_an_error_not_an_empty_string(sql_tree: Path) -> None:
    write(sql_tree, "schema/0040_typo.sql", "select {{ embeding_dimensions }};\n", "select 1;\n")
    result = run(None, "render")
    assert result.exit_code == 2
    assert "unknown variable" in result.output and "embeding_dimensions" in result.output


def test_invalid_settings_are_rejected_before_rendering(sql_tree: Path) -> None:
    (sql_tree.parent / "neurant-db.toml").write_text('embedding_dimensions = "1536; drop"\n')
    result = run(None, "render")
    assert result.exit_code == 2
    assert "embedding_dimensions must be an integer" in result.output
    (sql_tree.parent / "neurant-db.toml").write_text('colour = "blue"\n')
    result = run(None, "render")
    assert result.exit_code == 2 and "unknown setting(s): colour" in result.output


def test_dry_run_prints_the_sql_and_changes_nothing(sql_tree: Path, scratch_db: str) -> None:
    result = run(scratch_db, "migrate", "--dry-run")
    assert result.exit_code == 0
    assert "create table public.widgets" in result.output
    assert "insert into neurant_meta.schema_migrations" in result.output
    assert tables(scratch_db) == set()
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("select to_regnamespace('neurant_meta')").fetchone() == (None,)


def test_migrate_applies_everything_and_status_shows_nothing_pending(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    assert tables(scratch_db) == {"widgets", "gadgets"}
    result = run(scratch_db, "status", "--json")
    assert result.exit_code == 0
    assert {s["state"] for s in json.loads(result.output)["migrations"]} == {"applied"}
    again = run(scratch_db, "migrate")
    assert again.exit_code == 0 and "nothing to apply" in again.output


def test_migrate_to_stops_at_the_given_version(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate", "--to", "20").exit_code == 0
    assert ledger(scratch_db) == [10, 20]
    unknown = run(scratch_db, "migrate", "--to", "25")
    assert unknown.exit_code == 2 and "no migration has that version" in unknown.output
    assert "migrating" not in unknown.output


def test_an_edited_applied_migration_shows_as_drifted_and_blocks_migrate(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate", "--to", "20").exit_code == 0
    path = sql_tree / "schema/0010_widgets.sql"
    path.write_text(path.read_text() + "-- edited after release\n")
    status = run(scratch_db, "status", "--json")
    assert status.exit_code == 5
    states = {s["id"]: s["state"] for s in json.loads(status.output)["migrations"]}
    assert states == {"0010_widgets": "drifted", "0020_widget_count": "applied",
                      "0030_gadgets": "pending"}
    blocked = run(scratch_db, "migrate")
    assert blocked.exit_code == 5 and "0010_widgets" in blocked.output
    assert "gadgets" not in tables(scratch_db)
    assert run(scratch_db, "migrate", "--allow-drift").exit_code == 0
    assert "gadgets" in tables(scratch_db)


def test_migrate_refuses_a_database_whose_applied_migrations_have_no_file_here(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate", "--to", "20").exit_code == 0
    (sql_tree / "functions/0020_widget_count.sql").unlink()
    (sql_tree / "functions/0020_widget_count.rollback.sql").unlink()
    assert run(scratch_db, "status").exit_code == 5
    for args in (["migrate"], ["migrate", "--dry-run"], ["migrate", "--allow-drift"]):
        refused = run(scratch_db, *args)
        assert refused.exit_code == 5, (args, refused.output)
        assert "0020_widget_count" in refused.output and "up to date" not in refused.output
    assert "gadgets" not in tables(scratch_db) and ledger(scratch_db) == [10, 20]


def test_rollback_to_zero_then_migrate_again_works(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    result = run(scratch_db, "rollback", "--to", "0")
    assert result.exit_code == 0, result.output
    assert "rolled back 3 migration(s)" in result.output
    assert tables(scratch_db) == set() and ledger(scratch_db) == []
    assert run(scratch_db, "migrate").exit_code == 0
    assert ledger(scratch_db) == [10, 20, 30]


def test_rollback_steps_undoes_only_the_newest(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    assert run(scratch_db, "rollback", "--steps", "1").exit_code == 0
    assert ledger(scratch_db) == [10, 20]
    assert tables(scratch_db) == {"widgets"}


def test_rollback_needs_to_or_steps(sql_tree: Path, scratch_db: str) -> None:
    result = run(scratch_db, "rollback")
    assert result.exit_code == 2 and "--to VERSION or --steps N" in result.output


def test_rollback_to_a_version_that_was_never_applied_is_refused_not_read_as_zero(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    result = run(scratch_db, "rollback", "--to", "2")  # a typo for 20
    assert result.exit_code == 2 and "is not an applied migration" in result.output
    assert ledger(scratch_db) == [10, 20, 30]


def test_a_migration_that_commits_is_refused_before_anything_runs(sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_commits.sql",
          "-- would leave itself half-applied\ncreate table public.half (id int);\ncommit;\nselect 1/0;\n",
          "drop table public.half;\n")
    result = run(scratch_db, "migrate")
    assert result.exit_code == 2
    assert "0040_commits: `commit` cannot run inside the migration's transaction" in result.output
    assert tables(scratch_db) == set() and ledger(scratch_db) == []


def test_a_dollar_quoted_body_with_begin_and_commit_words_is_not_transaction_control(
        sql_tree: Path) -> None:
    write(sql_tree, "functions/0040_procedure.sql",
          "create procedure public.p() language plpgsql as $$\nbegin\n  commit;\nend $$;\n",
          "drop procedure public.p();\n")
    assert run(None, "render").exit_code == 0


def test_an_edited_rollback_of_an_applied_migration_is_drift(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    (sql_tree / "schema/0010_widgets.rollback.sql").write_text("drop table public.widgets cascade;\n")
    status = run(scratch_db, "status", "--json")
    assert status.exit_code == 5
    assert {s["id"]: s["state"] for s in json.loads(status.output)["migrations"]}["0010_widgets"] == "drifted"


def test_a_new_migration_numbered_below_the_newest_applied_one_is_refused(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    write(sql_tree, "schema/0015_late.sql", "create table public.late (id int);\n",
          "drop table public.late;\n")
    refused = run(scratch_db, "migrate")
    assert refused.exit_code == 2 and "0015_late" in refused.output
    assert "late" not in tables(scratch_db)
    assert run(scratch_db, "migrate", "--allow-out-of-order").exit_code == 0
    assert "late" in tables(scratch_db)


def test_a_rollback_that_does_nothing_is_an_error_not_a_silent_success(
        sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_empty_rollback.sql", "create table public.e (id int);\n",
          "-- nothing here\n")
    result = run(scratch_db, "migrate")
    assert result.exit_code == 2
    assert "0040_empty_rollback" in result.output and "does nothing" in result.output
    assert ledger(scratch_db) == []


def test_a_failing_migration_leaves_nothing_of_itself_and_keeps_earlier_ones(
        sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_broken.sql",
          "-- creates a table, then fails\ncreate table public.half (id int);\n"
          "insert into public.nope values (1);\n",
          "drop table public.half;\n")
    result = run(scratch_db, "migrate")
    assert result.exit_code == 6
    assert "apply of 0040_broken failed: [42P01]" in result.output
    assert "line" in result.output and "public.nope" in result.output
    assert "Traceback" not in result.output
    assert "half" not in tables(scratch_db)
    assert ledger(scratch_db) == [10, 20, 30]
    with psycopg.connect(scratch_db) as conn:
        yoyo = conn.execute("select count(*) from neurant_meta._yoyo_migration").fetchone()
    assert yoyo == (3,)


def test_a_crash_between_commit_and_yoyo_bookkeeping_is_reconciled(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("delete from neurant_meta._yoyo_migration where migration_id = '0030_gadgets'")
    result = run(scratch_db, "migrate")
    assert result.exit_code == 0 and "nothing to apply" in result.output
    assert run(scratch_db, "rollback", "--steps", "1").exit_code == 0
    assert ledger(scratch_db) == [10, 20]


def test_a_malformed_url_is_a_clear_error(sql_tree: Path) -> None:
    result = run("mysql://root@localhost/db", "status")
    assert result.exit_code == 3
    assert "unsupported database URL" in result.output and "Traceback" not in result.output


def test_an_unreachable_server_is_a_clear_error(sql_tree: Path) -> None:
    result = run("postgresql://nobody:secret@127.0.0.1:1/nothing", "status")
    assert result.exit_code == 3
    assert "cannot connect to" in result.output
    assert "secret" not in result.output and "Traceback" not in result.output


def test_a_missing_migration_folder_is_an_error_not_up_to_date(sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    shutil.rmtree(sql_tree / "functions")
    for command in ("migrate", "status", "render"):
        result = run(scratch_db, command)
        assert result.exit_code == 2, (command, result.output)
        assert "functions/" in result.output and "missing" in result.output
        assert "up to date" not in result.output


def test_an_sql_root_without_any_migration_is_an_error(
        tmp_path: Path, scratch_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "empty"
    for folder in ("schema", "functions", "policies", "indexes", "seeds"):
        (root / folder).mkdir(parents=True)
    monkeypatch.setenv("NEURANT_SQL_ROOT", str(root))
    result = run(scratch_db, "migrate")
    assert result.exit_code == 2 and "no migration" in result.output
    assert ledger(scratch_db) == []


def _widget_rows(url: str, n: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("insert into public.widgets select g, 'w' from generate_series(1, %s) g", (n,))


def test_rollback_that_drops_tables_holding_rows_is_refused_without_yes(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    _widget_rows(scratch_db, 3)
    refused = run(scratch_db, "rollback", "--to", "0")
    assert refused.exit_code != 0
    assert "public.widgets" in refused.output and "3 row" in refused.output
    assert "--yes" in refused.output
    assert scratch_db.split("?")[0].rsplit("/", 1)[1] in refused.output  # names the target database
    assert ledger(scratch_db) == [10, 20, 30] and tables(scratch_db) == {"widgets", "gadgets"}
    done = run(scratch_db, "rollback", "--to", "0", "--yes")
    assert done.exit_code == 0, done.output
    assert ledger(scratch_db) == [] and tables(scratch_db) == set()


def test_rollback_of_empty_tables_needs_no_confirmation_and_names_the_target(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    _widget_rows(scratch_db, 2)
    result = run(scratch_db, "rollback", "--steps", "1")  # drops public.gadgets, which is empty
    assert result.exit_code == 0, result.output
    dbname = scratch_db.split("?")[0].rsplit("/", 1)[-1]
    assert any(line.startswith("rolling back ") and f"dbname={dbname}" in line for line in result.output.splitlines())
    assert ledger(scratch_db) == [10, 20]


def test_rollback_over_rows_on_a_terminal_asks_and_does_nothing_unless_confirmed(
        sql_tree: Path, scratch_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import neurant_db.cli.migrations

    monkeypatch.setattr(neurant_db.cli.migrations, "stdin_is_terminal", lambda: True)
    assert run(scratch_db, "migrate").exit_code == 0
    _widget_rows(scratch_db, 1)
    base = ["--database-url", scratch_db, "rollback", "--to", "0"]
    declined = CliRunner().invoke(cli, base, input="n\n")
    assert declined.exit_code != 0 and "public.widgets" in declined.output and "drop them" in declined.output
    assert ledger(scratch_db) == [10, 20, 30]
    confirmed = CliRunner().invoke(cli, base, input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert ledger(scratch_db) == [] and tables(scratch_db) == set()
