"""Repository paths named in comments and docs must exist.

A comment or a doc that sends the reader to a test file that was never written, or
to a migration that was renumbered, costs a newcomer a search that finds nothing. This module reads
the prose of a source checkout - SQL `--` comments, Python comments and docstrings,
TOML `#` comments and Markdown - picks out every path under one of the repository's
own folders, and reports those that name nothing.

In SQL and TOML comments a numbered file named without its folder
(`0060_tenant_guard`) must exist in one of the numbered folders too.

A reference may be a whole path (`schema/2010_integrations.sql`), a folder
(`tests/isolation/`), a migration's number in its folder (`schema/2010`, which
names the file of that folder whose name starts with it) or a range of numbers
(`functions/3300-3340`: both ends must exist). Paths with a
placeholder (`tests/pgtap/<NNNN>_<topic>.sql`, `docs/{name}`, `tests/fixtures/*.sql`)
are patterns, not references, and are skipped.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT_FOLDERS = ("schema", "functions", "policies", "indexes", "seeds", "tests", "runner", "docs")
PATH = re.compile(r"(?<![\w./-])(?:" + "|".join(ROOT_FOLDERS) + r")/[\w./<>*{}-]*[\w]")
# A migration, pgTAP or fixture file named without its folder (`0060_tenant_guard`), in
# SQL and TOML comments (Python and Markdown name scratch and future migrations as
# examples).
BARE = re.compile(r"(?<![\w/.-])\d{4}_[a-z][a-z0-9_]*")
BARE_FOLDERS = ("schema", "functions", "policies", "indexes", "seeds", "tests/pgtap", "tests/fixtures", "tests/citus")
BARE_SUFFIXES = (".sql", ".toml")
RANGE = re.compile(r"(\d{4})-(\d{4})")
PLACEHOLDER = re.compile(r"[<>*{}]")
SCANNED_SUFFIXES = (".sql", ".py", ".toml", ".md")
# Generated from the catalog's comments, which the SQL files already hold.
GENERATED = ("docs/schema.sql", "docs/schema.md")


@dataclass(frozen=True)
class BrokenRef:
    file: str
    line: int
    ref: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.ref} does not exist"


def sql_prose(text: str) -> list[tuple[int, str]]:
    """The `--` comments of SQL text, with their line numbers (a `--` inside a quoted
    string is rare enough in this repository's SQL to be read as a comment too)."""
    return [(n, line[line.index("--"):]) for n, line in enumerate(text.splitlines(), 1) if "--" in line]


def toml_prose(text: str) -> list[tuple[int, str]]:
    return [(n, line[line.index("#"):]) for n, line in enumerate(text.splitlines(), 1) if "#" in line]


def python_prose(text: str) -> list[tuple[int, str]]:
    """Comments and docstrings of Python source (string literals are code: a test's
    scratch tree names files that exist only while it runs)."""
    found: list[tuple[int, str]] = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            found.append((tok.start[0], tok.string))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                first = body[0].lineno
                found += [(first + i, line) for i, line in enumerate(body[0].value.value.splitlines())]
    return found


def markdown_prose(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.splitlines(), 1))


PROSE = {".sql": sql_prose, ".py": python_prose, ".toml": toml_prose, ".md": markdown_prose}


def resolves(root: Path, ref: str) -> bool:
    """Whether ref names a file or folder of root, or is a migration number (`schema/2010`)
    or name stem (`schema/0140_tenancy_rules`) that one file of its folder starts with."""
    ref = ref.rstrip("/.")
    if (root / ref).exists():
        return True
    folder, _, stem = ref.rpartition("/")
    parent = root / folder
    if not stem or not parent.is_dir():
        return False
    names = [p.name for p in parent.iterdir()]
    numbers = RANGE.fullmatch(stem)
    stems = list(numbers.groups()) if numbers else [stem]
    return all(any(name.startswith(s) for name in names) for s in stems)


def bare_resolves(root: Path, name: str) -> bool:
    """Whether a file of one of the numbered folders starts with name."""
    return any(p.name.startswith(name) for folder in BARE_FOLDERS if (root / folder).is_dir()
               for p in (root / folder).iterdir())


def references(text: str, suffix: str) -> list[tuple[int, str]]:
    """The repository paths (and, in SQL and TOML, the bare numbered file names) named
    in the prose of text, with their line numbers."""
    refs: list[tuple[int, str]] = []
    for line_no, prose in PROSE[suffix](text):
        for match in PATH.finditer(prose):
            if not PLACEHOLDER.search(match.group()):
                refs.append((line_no, match.group()))
        if suffix in BARE_SUFFIXES:
            refs += [(line_no, m.group()) for m in BARE.finditer(prose)]
    return refs


def tracked_files(root: Path) -> list[str]:
    """The checkout's files as git knows them (committed or staged), else every file
    under root outside hidden folders."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, text=True, check=True).stdout
        return sorted(set(out.split()))
    except (OSError, subprocess.CalledProcessError):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def broken_references(root: Path, files: list[str] | None = None) -> list[BrokenRef]:
    """Every path named in the prose of the scanned files that does not exist under root."""
    broken: list[BrokenRef] = []
    for name in files if files is not None else tracked_files(root):
        path = root / name
        if path.suffix not in SCANNED_SUFFIXES or name in GENERATED or not path.is_file():
            continue
        for line_no, ref in references(path.read_text(encoding="utf-8"), path.suffix):
            if not (bare_resolves(root, ref) if "/" not in ref else resolves(root, ref)):
                broken.append(BrokenRef(name, line_no, ref))
    return broken
