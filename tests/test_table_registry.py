"""The table registry (schema/_tables.toml) is the one list of tables: it equals the live
catalog, the access spec (an independent oracle) lists the same tables, and a registry
that is wrong in any way stops the render with a message naming the entry."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest

from neurant_db import table_registry
from neurant_db.errors import MigrationSourceError
from neurant_db.isolation import load_spec
from neurant_db.render import render_all
from neurant_db.settings import Settings
from neurant_db.table_registry import REGISTRY_FILE, load, parse
from neurant_db.testdb import TestDatabase, test_settings

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "tests" / "isolation" / "access_spec.toml"

CATALOG = """
select n.nspname || '.' || c.relname,
       exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id'
               and not a.attisdropped),
       c.relrowsecurity and c.relforcerowsecurity,
       exists (select 1 from pg_trigger t where t.tgrelid = c.oid and t.tgname = c.relname || '_audit'),
       (select count(*) from pg_policy p where p.polrelid = c.oid and p.polname like '%%\\_while\\_writable'),
       (select count(*) from pg_trigger t where t.tgrelid = c.oid
          and t.tgname in (c.relname || '_legal_hold', c.relname || '_legal_hold_truncate')),
       (select count(*) from pg_trigger t where t.tgrelid = c.oid
          and t.tgname in (c.relname || '_0_tenant_guard', c.relname || '_0_tenant_key'))
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition and n.nspname in ('public', 'private', 'archive', 'auth')
  and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
order by 1
"""


def test_the_registry_lists_exactly_the_tables_of_the_migrated_catalog_with_their_properties(
        neurant_db: TestDatabase) -> None:
    profile = test_settings().profile
    with psycopg.connect(neurant_db.url) as conn:
        live = {row[0]: row[1:] for row in conn.execute(CATALOG).fetchall()}
    registry = {e.name: e for e in load().on(profile)}
    if profile == "supabase":  # the auth schema and its tables are Supabase's own
        registry.pop("auth.users", None)
        live = {name: row for name, row in live.items() if not name.startswith("auth.")}
    assert sorted(live) == sorted(registry), f"tables of the catalog vs {REGISTRY_FILE}"
    described = {name: (e.scope == "tenant", e.rls, e.audited, 3 if e.read_only else 0,
                        2 if e.legal_hold else 0, 2 if e.guarded else 0)
                 for name, e in registry.items()}
    assert {name: tuple(row) for name, row in live.items()} == described


def test_the_registry_lists_exactly_the_sequences_each_table_owns(neurant_db: TestDatabase) -> None:
    """rls() revokes the sequences the registry lists: a table's identity sequence it does
    not list would keep Supabase's default grants to anon and authenticated."""
    profile = test_settings().profile
    with psycopg.connect(neurant_db.url) as conn:
        live = set(conn.execute("""
            select t.relnamespace::regnamespace::text || '.' || t.relname || ' '
                   || s.relnamespace::regnamespace::text || '.' || s.relname
            from pg_class s join pg_depend d on d.objid = s.oid and d.classid = 'pg_class'::regclass
              and d.deptype in ('a', 'i')
            join pg_class t on t.oid = d.refobjid
            where s.relkind = 'S' and t.relnamespace::regnamespace::text in ('public', 'private', 'archive')
            """).fetchall())
    registered = {(f"{e.name} {seq}",) for e in load().on(profile) for seq in e.sequences}
    assert live == registered


def test_the_access_spec_lists_the_registry_tables_of_the_exposed_schemas() -> None:
    spec = load_spec(SPEC)
    registry = [e for e in load().entries if e.schema != "auth"]
    assert sorted(spec) == sorted(e.name for e in registry)
    for entry in registry:
        declared = set((spec[entry.name].profile or "vanilla supabase citus").split())
        assert (entry.name, sorted(declared)) == (entry.name, sorted(entry.profiles))
        assert (entry.name, spec[entry.name].is_global) == (entry.name, not entry.tenant)


def test_the_citus_layout_positions_follow_the_registry_order_without_gaps() -> None:
    placed = load().on("citus")
    assert [e.position for e in placed] == list(range(1, len(placed) + 1))
    assert [e.name for e in placed if e.scope == "root"] == ["public.companies"]
    assert all(e.position is None for e in load().entries if not e.on("citus"))


VALID = """
[table."public.companies"]
scope = "root"
legal_hold = { map = "tenant", note = "n" }
"""


@pytest.mark.parametrize(("extra", "complaint"), [
    ('[table."public.things"]\nscope = "tenant"\ncolor = "red"\n', "table public.things: unknown key(s) color"),
    ('[table."public.things"]\nscope = "tenant"\n',
     "table public.things: a tenant table has either legal_hold"),
    ('[table."public.things"]\nscope = "shared"\n', "table public.things: scope must be one of root, tenant"),
    ('[table."public.things"]\nscope = "global"\nprofiles = ["citus"]\n',
     "table public.things: citus (its placement) is required"),
    ('[table."public.things"]\nscope = "global"\ncitus = "distributed"\n',
     "table public.things: a global table has no tenant key to distribute by"),
    ('[table."public.things"]\nscope = "tenant"\nlegal_hold = { map = "company", note = "n", free = ["a b"] }\n',
     "table public.things: legal_hold.free must be a list of column names"),
    ('[table."public.things"]\nscope = "tenant"\n[table."public.things".allow]\n"fk.index" = "why"\n'
     'legal_hold = "none"\n', "table public.things: allow.fk.index: unknown exception"),
    ('[table."public.others"]\nscope = "root"\nlegal_hold = { map = "tenant", note = "n" }\n',
     "exactly one table has scope = \"root\""),
    ('[table."things"]\nscope = "global"\n', "table things: the name must be schema.table"),
    ('[table."public.things"]\nscope = "global"\nsequences = ["private.things_id_seq"]\n',
     "table public.things: sequences must list the table's sequences as public.<name>"),
    ('[table."archive.things"]\nscope = "global"\n', "table archive.things: archive_of (the live table"),
    ('[table."archive.things"]\nscope = "global"\narchive_of = "public.nothing"\n',
     "table archive.things: archive_of names public.nothing, which has no entry"),
    ('[table."public.things"]\nscope = "global"\nsince = "4200"\n',
     "table public.things: since must be the version (1-9999) of the migration that creates the table"),
])
def test_an_invalid_registry_entry_is_refused_naming_the_entry_and_the_key(extra: str, complaint: str) -> None:
    with pytest.raises(MigrationSourceError) as raised:
        parse(VALID.replace('scope = "root"', 'scope = "root"\nprofiles = ["vanilla"]') + extra)
    assert complaint in str(raised.value)


def test_a_registry_that_is_not_toml_is_refused_in_one_line() -> None:
    with pytest.raises(MigrationSourceError, match=r"_tables.toml: not valid TOML"):
        parse("[table.\n")


@pytest.fixture
def tree_without(sql_copy: Path) -> Path:
    """A copy of the SQL tree whose registry lacks public.chatbots."""
    registry = (sql_copy / REGISTRY_FILE).read_text(encoding="utf-8")
    start = registry.index('[table."public.chatbots"]')
    end = registry.index("# Per member", start)
    (sql_copy / REGISTRY_FILE).write_text(registry[:start] + registry[end:], encoding="utf-8")
    return sql_copy


def test_a_tenant_table_missing_from_the_registry_stops_the_render(tree_without: Path) -> None:
    with pytest.raises(MigrationSourceError) as raised:
        render_all(Settings().validate(), tree_without)
    assert "no entry for table public.chatbots" in str(raised.value)
    assert 'add [table."public.chatbots"]' in (raised.value.hint or "")


# A held tenant table with a refused TRUNCATE, on every profile: every loop over the
# registry (legal-hold and truncate triggers, the Citus layout, doctor notes) would list it.
LATE_ENTRY = """[table."public.widgets_late"]
{since}scope = "tenant"
citus = "distributed"
truncate_refused = "the widget count"
legal_hold = {{ map = "company", note = "Widgets of a held company stay." }}

"""


@pytest.mark.parametrize("profile", ["vanilla", "supabase", "citus"])
def test_an_entry_with_since_leaves_every_older_migration_byte_identical(sql_copy: Path, profile: str) -> None:
    """`since` (schema/_tables.toml): an entry added after a release, anywhere in the file,
    changes no render of a migration numbered below it, and no released Citus position."""
    settings = Settings(profile=profile).validate()
    before = {m.id: (m.apply_sql, m.rollback_sql) for m in render_all(settings, sql_copy)}
    registry = (sql_copy / REGISTRY_FILE).read_text(encoding="utf-8")
    at = registry.index('[table."public.chatbots"]')

    def render_with(entry: str) -> dict[str, tuple[str, str]]:
        (sql_copy / REGISTRY_FILE).write_text(registry[:at] + entry + registry[at:], encoding="utf-8")
        table_registry._load.cache_clear()  # read per file path once: read the edited one
        return {m.id: (m.apply_sql, m.rollback_sql) for m in render_all(settings, sql_copy)}

    assert render_with(LATE_ENTRY.format(since="since = 9000\n")) == before
    late = parse((sql_copy / REGISTRY_FILE).read_text(encoding="utf-8"))
    assert late["public.widgets_late"].position == len(late.on("citus"))
    assert [(e.name, e.position) for e in late.on("citus") if e.since is None] == \
        [(e.name, e.position) for e in load().on("citus") if e.since is None]
    # the test can fail: the same entry without `since` changes released renders
    assert render_with(LATE_ENTRY.format(since="")) != before


POLICY = re.compile(r"\bcreate\s+policy\s+\S+\s+on\s+([a-z_]+\.[a-z_]+)", re.IGNORECASE)


@pytest.mark.parametrize("profile", ["vanilla", "supabase", "citus"])
def test_every_policy_of_a_table_is_created_by_one_migration_so_drop_rls_drops_exactly_those(
        profile: str) -> None:
    """drop_rls (policies/_rls.sql) drops every policy of the tables it is given: that is the
    rollback of their policies only while one migration creates all of a table's policies."""
    creators: dict[str, set[str]] = {}
    for migration in render_all(Settings(profile=profile).validate()):
        for table in POLICY.findall(migration.apply_sql):
            creators.setdefault(table, set()).add(migration.id)
    assert {table: sorted(ids) for table, ids in creators.items() if len(ids) > 1} == {}


def test_a_tree_without_a_registry_renders_until_a_template_asks_for_it(sql_tree: Path) -> None:
    assert [m.id for m in render_all(Settings().validate(), sql_tree)] == [
        "0010_widgets", "0020_widget_count", "0030_gadgets"]
    (sql_tree / "schema" / "0040_guarded.sql").write_text(
        "-- a tenant table\n{% from 'schema/_tenant_guard.sql' import tenant_guard -%}\n"
        "{{ tenant_guard('public.widgets') }}\n", encoding="utf-8")
    (sql_tree / "schema" / "0040_guarded.rollback.sql").write_text("-- nothing\n", encoding="utf-8")
    shutil.copy(REPO / "schema" / "_tenant_guard.sql", sql_tree / "schema")
    with pytest.raises(MigrationSourceError, match=r"table registry .*_tables.toml is missing, and a template uses it"):
        render_all(Settings().validate(), sql_tree)


def test_an_archive_table_holds_exactly_the_columns_of_its_live_table_plus_archived_at(
        neurant_db: TestDatabase) -> None:
    """The archive jobs copy rows column for column: a column added to a live table and not
    to its archive table (or the reverse) fails here, with the registry naming the pair."""
    columns = """select coalesce(array_agg(a.attname::text order by a.attname), '{}')
                   from pg_attribute a where a.attrelid = %s::regclass and a.attnum > 0
                    and not a.attisdropped"""
    archives = load().archives()
    assert archives, "the registry names no archive table"
    with psycopg.connect(neurant_db.url) as conn:
        for entry in archives:
            archived = conn.execute(columns, (entry.name,)).fetchone()
            live = conn.execute(columns, (entry.archive_of,)).fetchone()
            assert archived is not None and live is not None
            assert (entry.name, sorted([*live[0], "archived_at"])) == (entry.name, archived[0])


CREATE_TABLE = re.compile(r"^create table ([a-z_]+\.[a-z_]+)", re.MULTILINE)


@pytest.mark.parametrize("profile", ["vanilla", "supabase", "citus"])
def test_each_profile_renders_exactly_the_registry_tables_each_with_one_guard_and_one_rls_header(
        profile: str) -> None:
    """Without a database: the tables a profile's migrations create are its registry entries
    (auth.users is Supabase's own on supabase), and each gets its tenant guard and RLS header
    exactly once when the registry says so."""
    sql = "\n".join(m.apply_sql for m in render_all(Settings(profile=profile).validate()))
    entries = load().on(profile)
    assert sorted(CREATE_TABLE.findall(sql)) == sorted(e.name for e in entries)
    counts = {e.name: (sql.count(f"create trigger {e.relname}_0_tenant_guard\n  before insert on {e.name}\n"),
                       sql.count(f"alter table {e.name} enable row level security;")) for e in entries}
    assert counts == {e.name: (1 if e.guarded else 0, 1 if e.rls else 0) for e in entries}
