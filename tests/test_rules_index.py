"""Every business rule in one place: docs/rules.toml names, per rule, the enforcing
objects and files and the one test file that proves it; docs/rules.md is generated
from it and fresh; every file exists, every object is named in its file, every
proving test file names the rule, and docs/design.md links every rule."""

from __future__ import annotations

import re
from pathlib import Path

from neurant_db.cli import cli
from neurant_db.repo_docs import COMMAND, stale
from neurant_db.rules_index import RULES_INDEX, RULES_SOURCE, load_rules, problems, render_rules

ROOT = Path(__file__).resolve().parent.parent
INDEX = "(docs/rules.md)"  # spelled apart here, so this file's examples are not markers


def test_the_committed_rules_index_is_fresh() -> None:
    assert RULES_INDEX not in stale(ROOT, cli), f"regenerate with: {COMMAND}"


def test_every_rule_names_existing_files_objects_named_there_and_a_test_that_names_the_rule() -> None:
    rules = load_rules(ROOT / RULES_SOURCE)
    assert problems(rules, ROOT) == []
    assert len(rules) >= 30


def test_a_rule_with_a_missing_file_object_or_test_marker_is_reported(tmp_path: Path) -> None:
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "0010_x.sql").write_text("create function private.real_guard() ...\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "proof.sql").write_text(
        f"-- rule: guard-rule-extended {INDEX}\n-- rule: guard-rule\n")
    (tmp_path / "tests" / "stray.py").write_text(f"# rule: guard-rule {INDEX}\n")
    source = tmp_path / "rules.toml"
    source.write_text('''
[[rule]]
id = "guard-rule"
domain = "tenancy"
rule = "Something holds."
enforced = [
  { file = "schema/0010_x.sql", objects = ["private.real_guard", "private.gone_guard"] },
  { file = "schema/0020_gone.sql", objects = ["x"] },
]
proved = "tests/proof.sql"
also = ["tests/missing.py"]
doctor = ["no.such_check"]
''')
    found = problems(load_rules(source), tmp_path)
    assert found == [
        "guard-rule: neurant-db doctor has no check no.such_check",
        "guard-rule: schema/0010_x.sql does not name private.gone_guard",
        "guard-rule: enforcing file schema/0020_gone.sql does not exist",
        "guard-rule: test file tests/missing.py does not exist",
        f"guard-rule: tests/proof.sql does not name the rule (write `rule: guard-rule {INDEX}` where the proof is)",
        "tests/proof.sql names rule guard-rule-extended, which docs/rules.toml does not list",
        "tests/stray.py names rule guard-rule, whose entry does not list that file",
    ]


def test_the_rules_index_links_each_rule_to_its_enforcing_files_and_its_proof() -> None:
    rules = load_rules(ROOT / RULES_SOURCE)
    text = render_rules(rules)
    for r in rules:
        section = text.split(f"\n### {r.id}\n", 1)[1].split("\n### ", 1)[0]
        assert r.rule in section
        assert all(f"(../{e.file})" in section for e in r.enforced)
        assert f"proved in [`{r.proved}`](../{r.proved})" in section


def test_every_rule_of_the_design_links_into_the_rules_index() -> None:
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\(rules\.md#([a-z0-9-]+)\)", design))
    ids = {r.id for r in load_rules(ROOT / RULES_SOURCE)}
    assert linked - ids == set(), "design.md links rules the index does not have"
    assert ids - linked == set(), "rules the design does not link to"
