"""Concurrent runs: one migration lock, held by a live session only."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import psycopg
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.locking import ensure_lock_table, try_lock

from .conftest import write


def test_a_held_lock_makes_migrate_fail_naming_the_holder(sql_tree: Path, scratch_db: str) -> None:
    holder = psycopg.connect(scratch_db, autocommit=True, application_name="someone else")
    try:
        ensure_lock_table(holder)
        assert try_lock(holder)
        result = CliRunner().invoke(
            cli, ["--database-url", scratch_db, "migrate", "--lock-timeout", "0.5"])
        assert result.exit_code == 4
        assert "holds the migration lock" in result.output
        assert "someone else" in result.output
    finally:
        holder.close()
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("select to_regclass('public.widgets')").fetchone() == (None,)


def test_a_crashed_holder_does_not_block_the_next_run(sql_tree: Path, scratch_db: str) -> None:
    # A process that takes the lock and dies without releasing it.
    code = (
        f"import os, psycopg; from neurant_db.locking import ensure_lock_table, try_lock;"
        f"c = psycopg.connect({scratch_db!r}, autocommit=True); ensure_lock_table(c);"
        f"assert try_lock(c); os._exit(9)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 9
    # A stale yoyo lock row, as a crashed plain-yoyo run leaves.
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("create schema if not exists neurant_meta")
        conn.execute("create table neurant_meta.yoyo_lock (locked int default 1 primary key, "
                     "ctime timestamp, pid int not null)")
        conn.execute("insert into neurant_meta.yoyo_lock (pid, ctime) values (424242, now())")
    result = CliRunner().invoke(
        cli, ["--database-url", scratch_db, "migrate", "--lock-timeout", "10"])
    assert result.exit_code == 0, result.output


def test_two_migrate_runs_at_once_apply_each_migration_exactly_once(
        sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_slow.sql",
          "-- takes a while so the runs overlap\nselect pg_sleep(1);\n"
          "create table public.slow (id int);\n", "drop table public.slow;\n")
    outcomes: list[int] = []

    def one() -> None:
        r = CliRunner().invoke(cli, ["--database-url", scratch_db, "migrate", "--lock-timeout", "30"])
        outcomes.append(r.exit_code)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [0, 0]
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute(
            "select version, count(*) from neurant_meta.schema_migrations group by 1 order by 1"
        ).fetchall()
    assert rows == [(10, 1), (20, 1), (30, 1), (40, 1)]


def test_a_connection_killed_mid_migration_is_reported_as_unknown_not_as_rolled_back(
        sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_slow.sql",
          "-- long enough to be killed\ncreate table public.slow (id int);\nselect pg_sleep(30);\n",
          "drop table public.slow;\n")
    outcome: list[str] = []

    def run_migrate() -> None:
        r = CliRunner().invoke(cli, ["--database-url", scratch_db, "migrate"])
        outcome.append(f"{r.exit_code}\n{r.output}")

    t = threading.Thread(target=run_migrate)
    t.start()
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        for _ in range(200):
            row = conn.execute("select pid from pg_stat_activity where query like '%%pg_sleep(30)%%' "
                               "and pid <> pg_backend_pid()").fetchone()
            if row:
                conn.execute("select pg_terminate_backend(%s)", (row[0],))
                break
            threading.Event().wait(0.05)
    t.join(timeout=60)
    code, output = outcome[0].split("\n", 1)
    assert code == "6"
    assert "connection was lost during the apply of 0040_slow" in output
    assert "Traceback" not in output
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("select to_regclass('public.slow')").fetchone() == (None,)
        assert conn.execute("select max(version) from neurant_meta.schema_migrations").fetchone() == (30,)


# --- a killed run's sessions outlive its lock ---------------------------------------------------

def _migrate_in_a_process(url: str) -> subprocess.Popen[str]:
    code = ("import sys; from neurant_db.cli import main; "
            f"sys.argv = ['neurant-db', '--database-url', {url!r}, 'migrate']; main()")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for(url: str, sql: str, seconds: float = 30) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(int(seconds / 0.05)):
            row = conn.execute(sql).fetchone()
            if row:
                return int(row[0])
            threading.Event().wait(0.05)
    raise AssertionError(f"never seen: {sql}")


def _alive(url: str, pid: int) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone() is not None


def test_the_next_run_stops_the_statement_a_killed_run_left_running(sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_slow.sql",
          "-- long enough to be killed\ncreate table public.slow (id int);\nselect pg_sleep(60);\n",
          "drop table public.slow;\n")
    killed = _migrate_in_a_process(scratch_db)
    orphan = _wait_for(scratch_db, "select pid from pg_stat_activity where query like '%pg_sleep(60)%' "
                       "and pid <> pg_backend_pid()")
    killed.kill()  # kill -9: the lock session dies with the process, the statement runs on
    killed.wait(timeout=30)
    assert _alive(scratch_db, orphan), "the server still runs the killed run's statement"
    # the orphan holds public.slow: without stopping it, the next run would wait for it
    sql_tree.joinpath("schema/0040_slow.sql").write_text(
        "-- long enough to be killed\ncreate table public.slow (id int);\n")
    result = CliRunner().invoke(cli, ["--database-url", scratch_db, "migrate", "--lock-timeout", "5"])
    assert result.exit_code == 0, result.output
    assert f"stopped pid {orphan} (neurant-db migrate, active: " in result.output, result.output
    assert not _alive(scratch_db, orphan)
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("select count(*) from neurant_meta.schema_migrations where version = 40"
                            ).fetchone() == (1,)


def test_an_index_a_killed_run_was_building_concurrently_is_stopped_then_built_again(
        sql_tree: Path, scratch_db: str) -> None:
    # an index whose build takes a while: 120 rows through an expression that sleeps 50 ms
    write(sql_tree, "schema/0040_slow_key.sql",
          "-- a deliberately slow index expression\n"
          "create function public.slow_key(i int) returns int language plpgsql immutable as "
          "$$ begin perform pg_sleep(0.05); return i; end $$;\n"
          "insert into public.widgets select g, 'w' || g from generate_series(1, 120) g;\n"
          # an autovacuum ANALYZE would run the slow expression too, and the new build waits for it
          "alter table public.widgets set (autovacuum_enabled = off);\n",
          "drop function public.slow_key(int);\ndelete from public.widgets;\n")
    write(sql_tree, "indexes/0050_slow_index.sql",
          "-- Why: an online index a run can be killed in the middle of.\n-- neurant: no-transaction\n"
          "create index concurrently if not exists widgets_slow_idx on public.widgets (public.slow_key(id));\n",
          "-- Why: undoes 0050.\ndrop index concurrently if exists public.widgets_slow_idx;\n")
    killed = _migrate_in_a_process(scratch_db)
    orphan = _wait_for(scratch_db, "select pid from pg_stat_progress_create_index "
                       "where index_relid = to_regclass('public.widgets_slow_idx')")
    killed.kill()
    killed.wait(timeout=30)
    assert _alive(scratch_db, orphan), "the server still builds the killed run's index"
    result = CliRunner().invoke(cli, ["--database-url", scratch_db, "migrate"])
    assert result.exit_code == 0, result.output
    assert f"stopped pid {orphan}" in result.output and "create index:" in result.output, result.output
    assert not _alive(scratch_db, orphan)
    with psycopg.connect(scratch_db) as conn:
        valid = conn.execute("select i.indisvalid from pg_index i "
                             "where i.indexrelid = 'public.widgets_slow_idx'::regclass").fetchone()
        assert valid == (True,)
        assert conn.execute("select max(version) from neurant_meta.schema_migrations").fetchone() == (50,)
