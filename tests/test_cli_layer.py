"""The command line stays a thin layer over the library: its modules (runner/neurant_db/cli/)
hold no SQL and run no statement, stay small, and never silence the linter."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import neurant_db.cli

CLI_PACKAGE = Path(neurant_db.cli.__file__).parent
CLI_MODULES = sorted(CLI_PACKAGE.glob("*.py"))
MAX_LINES = 500
SQL = re.compile(
    r"\b(select\s[^\"']*?\bfrom\s|insert\s+into\s|update\s+[\w.\"]+\s+set\s|delete\s+from\s|"
    r"(create|drop|alter)\s+(table|index|schema|database|function|procedure|role|extension|policy|trigger)\b|"
    r"(grant|revoke)\s+\w+\s+on\s|call\s+[\w.]+\s*\()",
    re.IGNORECASE)
DATABASE_CALLS = {"execute", "executemany", "fetchone", "fetchall", "cursor", "copy"}


def sql_in(source: str) -> list[str]:
    """String literals that read as SQL statements, and calls that run statements."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"line {node.lineno}: SQL text {node.value[:60]!r}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in DATABASE_CALLS):
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
    return found


def test_the_cli_is_split_into_modules() -> None:
    assert len(CLI_MODULES) > 5
    assert (CLI_PACKAGE / "context.py").is_file() and (CLI_PACKAGE / "root.py").is_file()


@pytest.mark.parametrize("path", CLI_MODULES, ids=lambda p: p.name)
def test_no_cli_module_holds_sql_or_runs_a_statement(path: Path) -> None:
    assert sql_in(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", CLI_MODULES, ids=lambda p: p.name)
def test_every_cli_module_stays_under_the_size_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines; split it by command group"


@pytest.mark.parametrize("path", CLI_MODULES, ids=lambda p: p.name)
def test_no_cli_module_silences_the_linter(path: Path) -> None:
    assert "noqa" not in path.read_text(encoding="utf-8")


def test_sql_in_a_command_is_found() -> None:
    command = (
        'def holds(conn):\n'
        '    """List holds (jq \'.[] | select(.active)\'); drop tables holding rows."""\n'
        '    return conn.execute("select id from public.legal_holds where released_at is null")\n'
        'def hold(conn):\n'
        '    text = "insert into public.legal_holds (company_id) values (%s)"\n')
    found = sql_in(command)
    assert len(found) == 3, found
    assert any(".execute(" in f for f in found) and any("insert into" in f for f in found)
    assert sql_in('"""Drop tables that hold rows; select(.state); a database is created."""') == []
