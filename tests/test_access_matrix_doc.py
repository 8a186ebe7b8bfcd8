"""The readable access matrix (docs/access-matrix.md) is generated from the spec the
suite enforces; it must never go stale."""

from __future__ import annotations

from pathlib import Path

from neurant_db.isolation import load_spec, render_matrix

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_access_matrix_matches_the_access_spec() -> None:
    expected = render_matrix(load_spec(ROOT / "tests" / "isolation" / "access_spec.toml")) + "\n"
    committed = (ROOT / "docs" / "access-matrix.md").read_text(encoding="utf-8")
    assert committed == expected, "run: neurant-db matrix --out docs/access-matrix.md"
