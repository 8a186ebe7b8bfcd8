"""The docs generated from the repository itself, no database needed: the CLI
reference (docs/cli.md, from the click command tree) and the index of business
rules (docs/rules.md, from docs/rules.toml).

    python -m neurant_db.repo_docs           # write both
    python -m neurant_db.repo_docs --check   # exit 1 naming the stale ones

tests/test_cli_reference.py and tests/test_rules_index.py fail when a committed file
differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import cli
from .cli_reference import render_cli_reference
from .paths import sql_root
from .rules_index import RULES_INDEX, RULES_SOURCE, load_rules, render_rules

CLI_REFERENCE = "docs/cli.md"
COMMAND = "python -m neurant_db.repo_docs"


def generated(root: Path, cli_root: click.Group) -> dict[str, str]:
    """Each generated file (path relative to root) with the text it must hold."""
    return {
        CLI_REFERENCE: render_cli_reference(cli_root),
        RULES_INDEX: render_rules(load_rules(root / RULES_SOURCE)),
    }


def stale(root: Path, cli_root: click.Group) -> list[str]:
    """The generated files whose committed text differs (or that are missing)."""
    out = []
    for name, text in generated(root, cli_root).items():
        path = root / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


def write(root: Path, cli_root: click.Group) -> list[str]:
    written = []
    for name, text in generated(root, cli_root).items():
        (root / name).write_text(text, encoding="utf-8")
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = sql_root()
    if args == ["--check"]:
        names = stale(root, cli)
        for name in names:
            print(f"stale: {name}; regenerate with: {COMMAND}")
        return 1 if names else 0
    if args:
        print(f"usage: {COMMAND} [--check]", file=sys.stderr)
        return 2
    for name in write(root, cli):
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
