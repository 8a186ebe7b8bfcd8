"""No comment or doc names a repository file that does not exist, and the repository
cites nothing outside itself (the design lives in docs/design.md)."""

from __future__ import annotations

import re
from pathlib import Path

from neurant_db.file_refs import broken_references, references, tracked_files

ROOT = Path(__file__).resolve().parent.parent


def test_no_comment_or_doc_names_a_file_that_does_not_exist() -> None:
    assert [str(b) for b in broken_references(ROOT)] == []


def test_a_reference_to_a_missing_file_is_found_and_patterns_are_not(tmp_path: Path) -> None:
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "2010_integrations.sql").write_text(
        "-- see tests/pgtap/3040_legal_holds.sql\nselect 1;\n-- fixed by 4000_hardening, like 2010_integrations\n")
    (tmp_path / "notes.md").write_text("schema/2010 and schema/2010_integrations.sql and tests/pgtap/<NNNN>_x.sql;"
                                       " functions/0300-0310\n")
    (tmp_path / "tool.py").write_text('"""Reads docs/missing.md."""\nPATH = "schema/0020_scratch.sql"  # code\n')
    files = ["schema/2010_integrations.sql", "notes.md", "tool.py"]
    assert [str(b) for b in broken_references(tmp_path, files)] == [
        "schema/2010_integrations.sql:1: tests/pgtap/3040_legal_holds.sql does not exist",
        "schema/2010_integrations.sql:3: 4000_hardening does not exist",
        "notes.md:1: functions/0300-0310 does not exist",
        "tool.py:1: docs/missing.md does not exist",
    ]
    assert references("-- schema/0060_tenant_guard.sql, and x.y\n", ".sql") == [(1, "schema/0060_tenant_guard.sql")]


def test_nothing_in_the_repository_cites_the_shared_design_page() -> None:
    citing = []
    for name in tracked_files(ROOT):
        path = ROOT / name
        if path.suffix in (".sql", ".py", ".toml", ".md") and path.is_file() and name != "tests/test_file_refs.py":
            text = path.read_text(encoding="utf-8")
            # ../shared/vendor (the real engines tests build and start) is a test dependency,
            # found at run time, not a citation of the design
            if re.search(r"\.\./shared/(?!vendor\b)", text) or "DESIGN.md" in text:
                citing.append(name)
    assert citing == []
