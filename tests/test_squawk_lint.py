"""`neurant-db lint` runs squawk on the rendered migrations: a new migration (4000 on)
that takes a blocking lock on an existing table fails the lint, its online form passes,
the real tree passes with only the justified exceptions of squawk-exceptions.toml, and
a missing squawk fails (it is a dev dependency, never a skip)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.paths import MIGRATION_FOLDERS, sql_root
from neurant_db.squawk_lint import CONFIG, EXCEPTIONS, SquawkUnavailable, check_migrations, squawk_executable

from .conftest import write

BLOCKING_INDEX = ("-- Why: find conversations by channel (domain 1, public.conversations).\n"
                  "create index conversations_channel_idx on public.conversations (company_id, channel);\n")
ONLINE_INDEX = ("-- Why: find conversations by channel (domain 1, public.conversations).\n"
                "-- neurant: no-transaction\n"
                "create index concurrently if not exists conversations_channel_idx\n"
                "  on public.conversations (company_id, channel);\n")
ONLINE_INDEX_ROLLBACK = ("-- Why: undoes 4000_conversations_channel_index.sql.\n"
                         "-- neurant: no-transaction\n"
                         "drop index concurrently if exists public.conversations_channel_idx;\n")
VALIDATED_FK = ("-- Why: messages name their integration (domain 2, public.messages).\n"
                "alter table public.messages add column integration_id uuid;\n"
                "alter table public.messages add constraint messages_integration_fkey\n"
                "  foreign key (company_id, integration_id) references public.integrations (company_id, id)\n"
                "  on delete cascade;\n")
FK_ROLLBACK = ("-- Why: undoes 4010_messages_integration.sql.\n"
               "alter table public.messages drop column integration_id;\n")


@pytest.fixture
def real_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch copy of the real baseline (five folders, squawk config and exceptions)."""
    root = tmp_path / "sql"
    for folder in MIGRATION_FOLDERS:
        shutil.copytree(sql_root() / folder, root / folder)
    for name in (CONFIG, EXCEPTIONS):
        shutil.copy(sql_root() / name, root / name)
    monkeypatch.setenv("NEURANT_SQL_ROOT", str(root))
    return root


def rules(root: Path) -> list[tuple[str, str]]:
    return [(f.path, f.rule) for f in check_migrations(root)]


def test_squawk_is_installed_with_the_dev_extra() -> None:
    assert Path(squawk_executable()).is_file()


def test_the_real_migrations_pass_squawk_with_only_the_justified_exceptions() -> None:
    findings = check_migrations(sql_root())
    assert findings == [], "\n".join(map(str, findings))


def test_a_new_migration_adding_a_blocking_index_to_an_existing_table_fails_lint(real_tree: Path) -> None:
    write(real_tree, "indexes/4000_conversations_channel_index.sql", BLOCKING_INDEX,
          "-- Why: undoes 4000_conversations_channel_index.sql.\ndrop index public.conversations_channel_idx;\n")
    assert sorted(rules(real_tree)) == [
        ("indexes/4000_conversations_channel_index.rollback.sql", "squawk:require-concurrent-index-deletion"),
        ("indexes/4000_conversations_channel_index.sql", "squawk:require-concurrent-index-creation")]
    result = CliRunner().invoke(cli, ["lint"])
    assert result.exit_code == 1
    assert ("indexes/4000_conversations_channel_index.sql:2: [squawk:require-concurrent-index-creation]"
            in result.output)


def test_a_new_migration_adding_a_validated_foreign_key_to_an_existing_table_fails_lint(real_tree: Path) -> None:
    write(real_tree, "schema/4010_messages_integration.sql", VALIDATED_FK, FK_ROLLBACK)
    found = rules(real_tree)
    assert ("schema/4010_messages_integration.sql", "squawk:adding-foreign-key-constraint") in found
    assert ("schema/4010_messages_integration.sql", "squawk:constraint-missing-not-valid") in found


def test_the_online_forms_of_the_same_changes_pass_lint(real_tree: Path) -> None:
    write(real_tree, "indexes/4000_conversations_channel_index.sql", ONLINE_INDEX, ONLINE_INDEX_ROLLBACK)
    write(real_tree, "schema/4010_messages_integration.sql",
          VALIDATED_FK.replace("  on delete cascade;\n", "  on delete cascade not valid;\n"), FK_ROLLBACK)
    write(real_tree, "schema/4020_messages_integration_validate.sql",
          "-- Why: validate messages_integration_fkey without blocking writes (domain 2, public.messages).\n"
          "alter table public.messages validate constraint messages_integration_fkey;\n",
          "-- Why: undoes 4020_messages_integration_validate.sql.\nselect 1;\n")
    assert rules(real_tree) == []


def test_an_exception_that_matches_nothing_any_more_is_a_finding(real_tree: Path) -> None:
    with (real_tree / EXCEPTIONS).open("a", encoding="utf-8") as out:
        out.write('\n[[exception]]\nmigrations = "4000"\nrules = ["require-concurrent-index-creation"]\n'
                  'reason = "An old exception whose migration was since made online."\n')
    assert rules(real_tree) == [(EXCEPTIONS, "squawk-exceptions")]


def test_lint_without_squawk_fails_instead_of_skipping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SquawkUnavailable):
        squawk_executable()
    result = CliRunner().invoke(cli, ["lint"])
    assert result.exit_code == 1
    assert "error: squawk is not installed" in result.output
    assert "squawk-cli" in result.output


def test_an_online_migration_whose_statements_cannot_be_rerun_fails_lint(real_tree: Path) -> None:
    write(real_tree, "indexes/4000_conversations_channel_index.sql",
          ONLINE_INDEX.replace("concurrently if not exists", "concurrently"), ONLINE_INDEX_ROLLBACK)
    assert rules(real_tree) == [("indexes/4000_conversations_channel_index.sql", "squawk:prefer-robust-stmts")]
