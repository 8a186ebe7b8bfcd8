"""One authoring style for every migration (CONVENTIONS.md, "Authoring style"):
the real tree follows it, and each rule of the checker catches the departure it
exists for (built on purpose in a scratch tree)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.sql_style import check_tree
from neurant_db.testdb import TestDatabase


def test_every_migration_follows_the_authoring_style() -> None:
    findings = check_tree()
    assert findings == [], "\n".join(str(f) for f in findings)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "sql"
    for folder in ("schema", "functions", "policies", "indexes", "seeds"):
        (root / folder).mkdir(parents=True)
    for rel, text in files.items():
        (root / rel).write_text(text, encoding="utf-8")
    return root


GOOD_TABLE = """-- Why: widgets.
create table public.widgets (
  company_id uuid not null,
  id uuid not null,
  constraint widgets_pkey primary key (company_id, id),
  constraint widgets_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade
);
"""
GOOD_ROLLBACK = "-- Why: undoes 1020_widgets.sql.\ndrop table public.widgets;\n"


@pytest.mark.parametrize(("rule", "files"), [
    ("numbering", {"policies/1020_widgets.sql": GOOD_TABLE,
                   "policies/1020_widgets.rollback.sql": GOOD_ROLLBACK}),
    ("header", {"schema/1020_widgets.sql": GOOD_TABLE.replace("-- Why: widgets.\n", ""),
                "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK}),
    ("header", {"schema/1020_widgets.sql": GOOD_TABLE,
                "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK.replace("1020_widgets", "1010_gadgets")}),
    ("indent", {"schema/1020_widgets.sql": GOOD_TABLE.replace("\n  company_id", "\n    company_id"),
                "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK}),
    ("whitespace", {"schema/1020_widgets.sql": GOOD_TABLE.replace("(\n", "( \n"),
                    "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK}),
    ("whitespace", {"schema/1020_widgets.sql": GOOD_TABLE + "\n",
                    "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK}),
    ("fk-name", {"schema/1020_widgets.sql": GOOD_TABLE.replace(
        "  constraint widgets_company_fkey foreign key (company_id)\n    references",
        "  foreign key (company_id)\n    references"),
                 "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK}),
    ("fk-name", {"schema/1020_widgets.sql": GOOD_TABLE.replace("widgets_company_fkey", "widgets_to_companies"),
                 "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK}),
    ("hint", {"schema/1020_widgets.sql": GOOD_TABLE + "do $$ begin raise exception using message = 'x', "
                                                      "hint = 'lowercase and no period'; end $$;\n",
              "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK}),
])
def test_the_style_check_catches_each_departure(tmp_path: Path, rule: str, files: dict[str, str]) -> None:
    findings = check_tree(_tree(tmp_path, files))
    assert [f.rule for f in findings if f.rule == rule], findings


def test_a_tree_in_the_style_has_no_findings(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"schema/1020_widgets.sql": GOOD_TABLE, "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK})
    assert check_tree(root) == []


def test_lint_command_exits_non_zero_on_a_style_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path, {"schema/1020_widgets.sql": GOOD_TABLE.replace("-- Why: widgets.\n", ""),
                            "schema/1020_widgets.rollback.sql": GOOD_ROLLBACK})
    monkeypatch.setenv("NEURANT_SQL_ROOT", str(root))
    result = CliRunner().invoke(cli, ["lint"])
    assert result.exit_code == 1 and "[header]" in result.output
    assert "Traceback" not in result.output


def test_foreign_keys_are_named_after_their_table_and_the_company_key_is_table_company_fkey(
        neurant_db: TestDatabase) -> None:
    with psycopg.connect(neurant_db.url) as conn:
        rows = conn.execute("""
            select c.conrelid::regclass::text, c.conname, c.confrelid = 'public.companies'::regclass
                   and c.conkey = array[(select attnum from pg_attribute
                                         where attrelid = c.conrelid and attname = 'company_id')]::int2[]
              from pg_constraint c join pg_namespace n on n.oid = c.connamespace
             where c.contype = 'f' and n.nspname in ('public', 'private', 'archive')""").fetchall()
    assert rows
    bad = []
    for table, name, is_company_key in rows:
        bare = table.split(".")[-1]
        if not (name.startswith(bare + "_") and name.endswith("_fkey")):
            bad.append(f"{table}.{name}: named <table>_<what>_fkey")
        if is_company_key and name != f"{bare}_company_fkey":
            bad.append(f"{table}.{name}: the direct company key is {bare}_company_fkey")
    assert bad == []
