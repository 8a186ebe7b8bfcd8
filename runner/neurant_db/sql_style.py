"""The authoring style of the versioned SQL files, as a lint check.

One style for every migration (CONVENTIONS.md, "Authoring style"): numbering by
domain and layer, a leading comment saying why the file exists, a rollback that
names what it undoes, two-space indentation, named foreign keys with an explicit
ON DELETE, and hints written as sentences. `neurant-db lint` and the test suite
run it, so a file that drifts from the style fails before review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from .errors import MigrationSourceError, not_utf8
from .paths import MIGRATION_FOLDERS, sql_root
from .render import FILE_NAME, ROLLBACK_SUFFIX

# Layer of a migration = its version modulo 1000 (the thousands digit is the domain).
LAYER_RANGES: dict[str, tuple[int, int]] = {
    "schema": (0, 299),
    "functions": (300, 499),
    "policies": (500, 699),
    "indexes": (700, 899),
    "seeds": (900, 999),
}
DOMAINS: dict[int, str] = {
    0: "platform and tenancy",
    1: "chatbots and conversations",
    2: "knowledge, integrations and analytics",
    3: "data lifecycle",
}
# Versions from 4000 on are the releases after 0.1.0: any domain, any layer, in release order.
FIRST_POST_RELEASE_VERSION = 4000

_HINT = re.compile(r"hint\s*=\s*(?:format\()?'((?:[^']|'')*)'")
_REFERENCES = re.compile(r"\breferences\s+[a-z_]+\.[a-z_]+\s*\(", re.IGNORECASE)
_FK_CLAUSE = re.compile(r"constraint\s+(\w+)\s+foreign\s+key\s*\([^)]*\)\s*references\s+[^;]*?on\s+delete", re.I | re.S)


@dataclass(frozen=True)
class StyleFinding:
    """One departure from the style: where, and what the rule says."""

    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines that are SQL, not comments or blank."""
    return [(n, line) for n, line in enumerate(text.split("\n"), 1)
            if line.strip() and not line.lstrip().startswith("--")]


def check_file(path: Path, root: Path) -> list[StyleFinding]:
    rel = str(path.relative_to(root))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationSourceError(not_utf8(rel, exc)) from None
    found: list[StyleFinding] = []

    def add(line: int, rule: str, message: str) -> None:
        found.append(StyleFinding(rel, line, rule, message))

    is_rollback = path.name.endswith(ROLLBACK_SUFFIX)
    lines = text.split("\n")
    if not lines[0].startswith("-- "):
        add(1, "header", "a migration starts with a `-- ` comment saying why it exists")
    if is_rollback:
        own = path.name[: -len(ROLLBACK_SUFFIX)] + ".sql"
        if not lines[0].startswith(f"-- Why: undoes {own}"):
            add(1, "header", f"a rollback's first line is `-- Why: undoes {own} ...`")
    if "\r" in text:
        add(1, "whitespace", "CRLF line endings; use LF")
    if not text.endswith("\n") or text.endswith("\n\n"):
        add(len(lines), "whitespace", "the file ends with exactly one newline")
    for n, line in enumerate(lines, 1):
        if "\t" in line:
            add(n, "whitespace", "tab character; indent with spaces")
        if line != line.rstrip():
            add(n, "whitespace", "trailing whitespace")
    # Two-space indentation: the first indented line under a statement that starts
    # at column 0 is indented by exactly two spaces (a continuation inside an open
    # parenthesis may align with it instead).
    code = _code_lines(text)
    for (_, prev), (n, line) in pairwise(code):
        indent = len(line) - len(line.lstrip(" "))
        top_level = prev[:1] not in (" ", "") and not prev.startswith(("$$", "{%"))
        open_paren = prev.count("(") > prev.count(")") and not prev.rstrip().endswith("(")
        if top_level and not open_paren and indent not in (0, 2):
            add(n, "indent", f"indented by {indent} spaces under a top-level line; the style is 2 per level")
    for match in _HINT.finditer(text):
        hint = match.group(1)
        n = text.count("\n", 0, match.start()) + 1
        if hint and (not hint[0].isupper() or not hint.rstrip().endswith((".", "?", "!"))):
            add(n, "hint", f"a hint is a sentence: capital first letter, final period ({hint[:40]!r})")
    if not is_rollback:
        named = {m.start() for m in _FK_CLAUSE.finditer(text)}
        for match in _FK_CLAUSE.finditer(text):
            name = match.group(1)
            if not name.endswith("_fkey"):
                n = text.count("\n", 0, match.start()) + 1
                add(n, "fk-name", f"foreign key {name} is named <table>_<what>_fkey")
        for match in _REFERENCES.finditer(text):
            clause_start = text.rfind("constraint", 0, match.start())
            if clause_start < 0 or clause_start not in named:
                n = text.count("\n", 0, match.start()) + 1
                add(n, "fk-name", "every foreign key is a named `constraint <table>_<what>_fkey foreign key (...) "
                    "references ... on delete ...`")
    return found


def check_layout(root: Path) -> list[StyleFinding]:
    """Numbering: each file's version lies in its folder's layer range and names a domain."""
    found: list[StyleFinding] = []
    for folder in MIGRATION_FOLDERS:
        low, high = LAYER_RANGES[folder]
        for path in sorted((root / folder).glob("*.sql")):
            if path.name.startswith("_") or path.name.endswith(ROLLBACK_SUFFIX):
                continue
            match = FILE_NAME.match(path.name)
            if not match:
                continue  # the runner refuses it with its own message
            version = int(match.group("version"))
            rel = str(path.relative_to(root))
            if version >= FIRST_POST_RELEASE_VERSION:
                continue
            if version // 1000 not in DOMAINS:
                found.append(StyleFinding(rel, 1, "numbering", f"{version:04d}: no domain {version // 1000}"))
            if not low <= version % 1000 <= high:
                found.append(StyleFinding(
                    rel, 1, "numbering",
                    f"{version:04d}: files in {folder}/ are numbered D{low:03d}-D{high:03d} (D = domain)"))
    return found


def check_tree(root: Path | None = None) -> list[StyleFinding]:
    """Every style finding of the SQL tree (empty list: the tree follows the style)."""
    root = root or sql_root()
    found = check_layout(root)
    for folder in MIGRATION_FOLDERS:
        for path in sorted((root / folder).glob("*.sql")):
            if not path.name.startswith("_"):
                found.extend(check_file(path, root))
    return found
