"""The online path: a migration that says `-- neurant: no-transaction` runs statement by
statement outside a transaction (CREATE INDEX CONCURRENTLY and the like), keeps the
ledger exact (a row only once every statement succeeded), and a failed CONCURRENTLY
leaves an invalid index that migrate, status and doctor report; the rerun after the fix
succeeds. Ordinary migrations keep their one transaction and their refusals.

Proves rule: online-migration-ledger (docs/rules.md)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from click.testing import CliRunner, Result

from neurant_db.cli import cli
from neurant_db.doctor import indexes_are_valid

from .conftest import write

ONLINE_INDEX = ("-- Why: look widgets up by name without blocking writes on a big table.\n"
                "-- neurant: no-transaction\n"
                "create {unique}index concurrently if not exists widgets_name_idx on public.widgets (name);\n")
ONLINE_INDEX_ROLLBACK = ("-- Why: undoes 0040_widgets_name_index.sql.\n"
                         "drop index concurrently if exists public.widgets_name_idx;\n")


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def ledger(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("select version from neurant_meta.schema_migrations order by 1")]


def index_validity(url: str, name: str) -> bool | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("select i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid"
                           " where c.relname = %s", (name,)).fetchone()
    return None if row is None else bool(row[0])


def test_a_no_transaction_migration_creates_its_index_concurrently_and_is_recorded(
        sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_widgets_name_index.sql", ONLINE_INDEX.format(unique=""), ONLINE_INDEX_ROLLBACK)
    result = run(scratch_db, "migrate")
    assert result.exit_code == 0, result.output
    assert "apply 0040_widgets_name_index" in result.output or "applying 0040_widgets_name_index" in result.output
    assert ledger(scratch_db) == [10, 20, 30, 40]
    assert index_validity(scratch_db, "widgets_name_idx") is True
    with psycopg.connect(scratch_db) as conn:
        yoyo = conn.execute("select count(*) from neurant_meta._yoyo_migration").fetchone()
    assert yoyo == (4,), "yoyo's table agrees with the ledger"
    assert run(scratch_db, "migrate").output.strip().endswith("nothing to apply: the database is up to date")

    back = run(scratch_db, "rollback", "--steps", "1")
    assert back.exit_code == 0, back.output
    assert ledger(scratch_db) == [10, 20, 30]
    assert index_validity(scratch_db, "widgets_name_idx") is None, "the rollback dropped it concurrently"


def test_a_failed_concurrent_unique_index_records_nothing_is_reported_everywhere_and_the_rerun_succeeds(
        sql_tree: Path, scratch_db: str) -> None:
    assert run(scratch_db, "migrate").exit_code == 0
    with psycopg.connect(scratch_db) as conn:
        conn.execute("insert into public.widgets values (1, 'same'), (2, 'same'), (3, 'other')")
    write(sql_tree, "schema/0040_widgets_name_index.sql", ONLINE_INDEX.format(unique="unique "),
          ONLINE_INDEX_ROLLBACK)

    failed = run(scratch_db, "migrate")
    assert failed.exit_code == 6, failed.output
    assert ("apply of 0040_widgets_name_index failed at statement 1 of 1: `create unique index concurrently "
            "if not exists widgets_name_idx on public.widgets (name);`: [23505]") in failed.output
    assert "nothing was recorded in the ledger: it is still pending" in failed.output
    assert "invalid index public.widgets_name_idx on public.widgets" in failed.output
    assert "drop index concurrently if exists public.widgets_name_idx;" in failed.output
    assert ledger(scratch_db) == [10, 20, 30]
    assert index_validity(scratch_db, "widgets_name_idx") is False

    status = run(scratch_db, "status")
    assert "0040_widgets_name_index  pending" in status.output
    assert "warning: invalid index public.widgets_name_idx on public.widgets" in status.output
    with psycopg.connect(scratch_db) as conn:
        found = [(f.level, f.check, f.object) for f in indexes_are_valid(conn)]
    assert found == [("error", "index.invalid", "public.widgets_name_idx")]

    with psycopg.connect(scratch_db) as conn:
        conn.execute("delete from public.widgets where id = 2")
    rerun = run(scratch_db, "migrate")
    assert rerun.exit_code == 0, rerun.output
    assert ("note: 0040_widgets_name_index: dropped the invalid index public.widgets_name_idx an earlier "
            "failed attempt left") in rerun.output
    assert ledger(scratch_db) == [10, 20, 30, 40]
    assert index_validity(scratch_db, "widgets_name_idx") is True
    assert "warning" not in run(scratch_db, "status").output


def test_a_multi_statement_online_migration_names_the_failing_statement_and_keeps_the_ledger_exact(
        sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_widgets_online.sql",
          "-- Why: three online steps.\n-- neurant: no-transaction\n"
          "create index concurrently if not exists widgets_id_name_idx on public.widgets (id, name);\n"
          "alter table public.widgets add constraint widgets_name_check check (name <> '') not valid;\n"
          "alter table public.widgets validate constraint widgets_name_check;\n",
          "-- Why: undoes 0040_widgets_online.sql.\n"
          "alter table public.widgets drop constraint if exists widgets_name_check;\n"
          "drop index concurrently if exists public.widgets_id_name_idx;\n")
    assert run(scratch_db, "migrate", "--to", "30").exit_code == 0
    with psycopg.connect(scratch_db) as conn:
        conn.execute("insert into public.widgets values (1, '')")
    failed = run(scratch_db, "migrate")
    assert failed.exit_code == 6
    assert "failed at statement 3 of 3: `alter table public.widgets validate constraint widgets_name_check;`" \
        in failed.output
    assert "statements 1-2 of it ran and stay (it is not transactional)" in failed.output
    assert ledger(scratch_db) == [10, 20, 30]
    with psycopg.connect(scratch_db) as conn:
        conn.execute("update public.widgets set name = 'x' where name = ''")
        # the constraint of statement 2 stays from the failed run: only statement 2 is not idempotent
        conn.execute("alter table public.widgets drop constraint widgets_name_check")
    assert run(scratch_db, "migrate").exit_code == 0
    assert ledger(scratch_db) == [10, 20, 30, 40]


def test_ordinary_migrations_keep_refusing_concurrently_and_online_ones_refuse_transaction_control(
        sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_blocking.sql",
          "-- Why: an index built concurrently inside the migration's transaction.\n"
          "create index concurrently widgets_name_idx on public.widgets (name);\n", "select 1;\n")
    refused = run(scratch_db, "migrate")
    assert refused.exit_code == 2
    assert "0040_blocking: `create index concurrently widgets_name_idx on pub" in refused.output
    assert "cannot run inside the migration's transaction" in refused.output
    assert "-- neurant: no-transaction" in refused.output, "the hint names the header"
    (sql_tree / "schema/0040_blocking.sql").write_text(
        "-- Why: an online migration may not open or end transactions.\n-- neurant: no-transaction\n"
        "begin;\ncreate index concurrently widgets_name_idx on public.widgets (name);\ncommit;\n",
        encoding="utf-8")
    refused = run(scratch_db, "migrate")
    assert refused.exit_code == 2
    assert "0040_blocking: `begin` cannot run in a no-transaction migration" in refused.output
    assert "0040_blocking: `commit` cannot run in a no-transaction migration" in refused.output
    assert "create index concurrently widgets_name_idx" not in refused.output


def test_the_header_counts_only_in_the_opening_comment_and_the_splitter_respects_quotes() -> None:
    from neurant_db.render import declares_no_transaction, sql_statements

    body = ("-- Why: x.\n-- neurant: no-transaction\n"
            "do $body$ begin perform ';'; end $body$;\n"
            "create function public.f() returns text language sql as $$ select 'a;b' $$;\n"
            "-- trailing comment;\n")
    assert len(sql_statements(body)) == 2
    assert declares_no_transaction(body)
    assert not declares_no_transaction("-- Why: x.\nselect 1;\n-- neurant: no-transaction\n")
    assert not declares_no_transaction("-- Why: x.\n-- neurant: no-transaction please\nselect 1;\n")


def test_the_dry_run_plan_of_a_no_transaction_migration_runs_in_psql_like_migrate(
        sql_tree: Path, scratch_db: str) -> None:
    from .test_cli_ledger import run_psql

    write(sql_tree, "schema/0040_widgets_name_index.sql", ONLINE_INDEX.format(unique=""), ONLINE_INDEX_ROLLBACK)
    plan = run(scratch_db, "migrate", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "create index concurrently" in plan.output
    done = run_psql(scratch_db, plan.stdout)
    assert done.returncode == 0, done.stderr
    assert ledger(scratch_db) == [10, 20, 30, 40]
    assert index_validity(scratch_db, "widgets_name_idx") is True
    status = run(scratch_db, "status", "--exit-code")
    assert status.exit_code == 0, status.output
