"""The distribution step of profile citus (seeds/3990_citus_distribution.sql,
private.citus_distribute()) and the live branch of `neurant-db citus plan`, run on plain
PostgreSQL against stand-ins of Citus's catalog and functions.

The stand-ins (a throwaway database only) have the names and shapes the step and the plan
use: a `pg_catalog.pg_dist_partition` (logicalrelid, partmethod, partkey as the column's Var
node text, colocationid, repmodel) and `pg_catalog.create_reference_table`,
`create_distributed_table`, `column_to_column_name`, which record every call into
`citus_standin.calls` and fill the stand-in catalog as Citus would. They prove the order of
the calls, the skip of tables already placed and the conflict path; not that a real Citus
accepts the calls (docs/scale-out.md, "Not verified")."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.citus import format_plan, read_plan
from neurant_db.citus_layout import layout_source, table_layout
from neurant_db.cli import cli
from neurant_db.table_registry import load
from neurant_db.testdb import TestDatabase

from .conftest import scratch_database

ARGS = ["--profile", "citus", "--embedding-dimensions", "8"]
QUALIFIED = "(select n.nspname || '.' || c.relname from pg_catalog.pg_class c " \
    "join pg_catalog.pg_namespace n on n.oid = c.relnamespace where c.oid = {})"

STANDINS = f"""
create schema citus_standin;
comment on schema citus_standin is 'Test stand-in for Citus: the calls the distribution step made.';
create table citus_standin.calls (
  n bigint generated always as identity primary key,
  fn text not null, relation text not null, distribution_column text, colocate_with text);
comment on table citus_standin.calls is 'Every call of the stand-in create_*_table functions, in order.';

set allow_system_table_mods = on;
create table pg_catalog.pg_dist_partition (
  logicalrelid regclass primary key, partmethod "char" not null, partkey text,
  colocationid integer not null, repmodel "char" not null);
reset allow_system_table_mods;

create function pg_catalog.column_to_column_name(table_name regclass, column_var_text text) returns text
  language sql stable set search_path = pg_catalog, pg_temp
as $$
  select a.attname::text from pg_catalog.pg_attribute a
   where a.attrelid = table_name and a.attnum = substring(column_var_text from ':varattno ([0-9]+)')::int
$$;

create function pg_catalog.create_reference_table(table_name regclass) returns void
  language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
begin
  insert into citus_standin.calls (fn, relation) values ('create_reference_table', {QUALIFIED.format('table_name')});
  insert into pg_catalog.pg_dist_partition values (table_name, 'n', null, 0, 't');
end
$$;

create function pg_catalog.create_distributed_table(
    table_name regclass, distribution_column text, distribution_type text default 'hash',
    colocate_with text default 'default', shard_count integer default null) returns void
  language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  v_group integer;
begin
  insert into citus_standin.calls (fn, relation, distribution_column, colocate_with)
    values ('create_distributed_table', {QUALIFIED.format('table_name')}, distribution_column, colocate_with);
  if colocate_with in ('none', 'default') then
    select coalesce(max(p.colocationid), 0) + 1 into v_group from pg_catalog.pg_dist_partition p;
  else
    select p.colocationid into strict v_group from pg_catalog.pg_dist_partition p
     where p.logicalrelid = colocate_with::regclass and p.partmethod = 'h';
  end if;
  insert into pg_catalog.pg_dist_partition
  select table_name, 'h', format('{{VAR :varno 1 :varattno %s :vartype %s}}', a.attnum, a.atttypid),
         v_group, 's'
    from pg_catalog.pg_attribute a where a.attrelid = table_name and a.attname = distribution_column;
end
$$;
"""


@pytest.fixture(scope="module")
def standin_cluster(neurant_db: TestDatabase) -> Iterator[str]:
    """A throwaway database with the stand-ins, then migrated with profile citus (the
    distribution step runs as the last migration and calls them). On the session's
    migrated server: the request roles are the server's, and the other tests expect them
    as the vanilla session migration created them (NOLOGIN), not as profile citus would."""
    with scratch_database(neurant_db.url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(STANDINS)
        result = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "migrate"])
        assert result.exit_code == 0, result.output
        yield url


def _calls(conn: psycopg.Connection) -> list[tuple[str, str, str | None, str | None]]:
    return conn.execute("select fn, relation, distribution_column, colocate_with "
                        "from citus_standin.calls order by n").fetchall()


def _layout(conn: psycopg.Connection) -> list[tuple[str, str, str | None, str | None]]:
    return conn.execute(f"""
      select {QUALIFIED.format('l.relation')}, l.placement, l.distribution_column::text,
             {QUALIFIED.format('l.colocate_with')}
        from private.citus_layout l order by l.position""").fetchall()


def test_the_distribution_step_calls_citus_in_layout_order_reference_tables_first_then_colocated(
        standin_cluster: str) -> None:
    with psycopg.connect(standin_cluster) as conn:
        calls, layout = _calls(conn), _layout(conn)
        placed = {p.relation: (p.placement, p.distribution_column, p.colocate_with) for p in table_layout(conn)}
        source = layout_source(conn)
    assert len(layout) == len(load().on("citus"))  # 4200 places the erasure ledger itself, last
    assert calls == [
        ("create_reference_table", table, None, None) if placement == "reference"
        else ("create_distributed_table", table, column, colocate or "none")
        for table, placement, column, colocate in layout]
    # reference tables, then the tenant root, then every tenant table colocated with it;
    # the layout table itself last (a reference table read from the coordinator)
    assert [c[0] for c in calls[:7]] == ["create_reference_table"] * 7
    assert calls[7] == ("create_distributed_table", "public.companies", "id", "none")
    assert {(c[0], c[2], c[3]) for c in calls[8:33]} == {("create_distributed_table", "company_id",
                                                        "public.companies")}
    assert calls[33] == ("create_reference_table", "private.citus_layout", None, None)
    # and the catalog Citus fills says so, as doctor --profile citus reads it
    assert source == "pg_dist_partition"
    assert placed["public.messages"] == ("distributed", "company_id", "public.companies")
    assert placed["private.memberships"] == ("reference", None, None)


def test_a_second_run_of_the_distribution_step_calls_nothing(standin_cluster: str) -> None:
    notices: list[str] = []
    with psycopg.connect(standin_cluster) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        before = _calls(conn)
        assert conn.execute("select private.citus_distribute()").fetchone() == (0,)
        assert _calls(conn) == before
        conn.rollback()
    assert notices == ["citus: 0 table(s) distributed as private.citus_layout says"]


def test_a_table_citus_holds_otherwise_than_planned_stops_the_step_with_55000_and_a_hint(
        standin_cluster: str) -> None:
    with psycopg.connect(standin_cluster) as conn:
        conn.execute("update pg_catalog.pg_dist_partition set partmethod = 'n', repmodel = 't', partkey = null, "
                     "colocationid = 0 where logicalrelid = 'public.messages'::regclass")
        before = _calls(conn)
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as raised, conn.transaction():
            conn.execute("select private.citus_distribute()")
        assert _calls(conn) == before
        plan, on_citus = read_plan(conn)
        conn.rollback()
    diag = raised.value.diag
    assert diag.sqlstate == "55000"
    assert diag.message_primary == ("table public.messages is already a reference table on this cluster, "
                                    "the layout says distributed by company_id")
    assert diag.message_hint == ("Undistribute it (select undistribute_table(...)) and migrate again, "
                                 "or fix private.citus_layout.")
    # citus plan shows the same conflict, and only that one
    assert on_citus
    assert [(t.table, t.conflict) for t in plan if not t.distributed] == [("public.messages", "reference")]
    line = next(line for line in format_plan(plan, on_citus) if " public.messages " in line)
    assert line.endswith("no (Citus holds it reference)")


def test_citus_plan_reads_what_citus_holds_on_a_citus_server(standin_cluster: str) -> None:
    result = CliRunner().invoke(cli, ["--database-url", standin_cluster, *ARGS, "citus", "plan", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["citus"] is True
    assert len(plan["tables"]) == len(load().on("citus"))
    assert [t["table"] for t in plan["tables"] if not t["distributed"] or t["conflict"]] == []
    text = CliRunner().invoke(cli, ["--database-url", standin_cluster, *ARGS, "citus", "plan"])
    assert text.exit_code == 0, text.output
    assert "not a Citus server" not in text.output
    assert all(line.endswith(" yes") for line in text.output.splitlines()[1:]), text.output
