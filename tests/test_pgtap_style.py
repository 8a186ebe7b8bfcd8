"""Style rules of the pgTAP suites (CONVENTIONS.md, Tests), checked on the files'
text: test bodies name fixtures (tests.company_id('A'), tests.act_as('A', 'operador'),
tests.chatbot_id('A', 'assigned'), ...) instead of spelling their UUIDs, and every
file declares a plan equal to the assertions it contains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neurant_db.tap import split_statements

PGTAP_DIR = Path(__file__).parent / "pgtap"
PGTAP_FILES = sorted(PGTAP_DIR.glob("*.sql"))

UUID_LITERAL = re.compile(
    r"(?<![0-9a-fA-F-])[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}(?![0-9a-fA-F-])")
# The one literal a body may spell: an id no row has (documented in CONVENTIONS.md).
NULL_UUID = "00000000-0000-0000-0000-000000000000"

# pgTAP functions that emit one TAP line each when selected.
ASSERTION_FUNCTIONS = (
    "ok", "is", "isnt", "matches", "imatches", "doesnt_match", "alike", "unalike", "cmp_ok",
    "pass", "fail", "throws_ok", "throws_like", "throws_matching", "lives_ok", "dies_ok",
    "results_eq", "results_ne", "set_eq", "set_ne", "bag_eq", "bag_ne", "is_empty", "isnt_empty",
    "row_eq", "performs_ok", "has_table", "hasnt_table", "has_function", "has_column", "col_is_pk",
)
# One assertion, or a conditional one: `select case when <condition> then <assertion>(...)
# else skip('<why>', 1) end` (an assertion that holds only where its condition does).
ASSERTION = re.compile(r"select\s+(?:case\s+when\s.+?\s+then\s+)?(?:" + "|".join(ASSERTION_FUNCTIONS)
                       + r")\s*\(", re.IGNORECASE | re.DOTALL)
LITERAL_PLAN = re.compile(r"select\s+plan\(\s*(\d+)\s*\)\s*;?", re.IGNORECASE)
COMPUTED_PLAN = re.compile(r"select\s+plan\(\s*(\d+)\s*\+", re.IGNORECASE)


def _code(statement: str) -> str:
    """The statement without comments, with quoted and dollar-quoted text blanked out."""
    code = re.sub(r"--[^\n]*", " ", statement)
    code = re.sub(r"\$([A-Za-z_]*)\$.*?\$\1\$", "$$", code, flags=re.S)
    code = re.sub(r"'(?:[^']|'')*'", "''", code)
    return code.strip()


def _emits_many(code: str) -> bool:
    """True when an assertion is selected FROM rows (one TAP line per row)."""
    depth = 0
    for token in re.finditer(r"[()]|\bfrom\b", code, flags=re.IGNORECASE):
        if token.group(0) == "(":
            depth += 1
        elif token.group(0) == ")":
            depth -= 1
        elif depth == 0:
            return True
    return False


def _assertions(statements: list[str]) -> tuple[int, int]:
    """(assertions that emit one line, assertions selected from rows)."""
    single = many = 0
    for statement in statements:
        code = _code(statement)
        if ASSERTION.match(code):
            if _emits_many(code):
                many += 1
            else:
                single += 1
    return single, many


def _plan(statements: list[str]) -> str:
    plans = [s for s in statements if re.match(r"select\s+plan\(", _code(s), re.IGNORECASE)]
    assert len(plans) == 1, f"expected exactly one select plan(...), found {len(plans)}"
    return re.sub(r"--[^\n]*", " ", plans[0]).strip()


def test_there_are_pgtap_files() -> None:
    assert len(PGTAP_FILES) >= 10


@pytest.mark.parametrize("path", PGTAP_FILES, ids=lambda p: p.name)
def test_pgtap_bodies_name_fixtures_instead_of_spelling_their_uuids(path: Path) -> None:
    spelled = [
        f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for text in [path.read_text(encoding="utf-8")]
        for m in UUID_LITERAL.finditer(text)
        if m.group(0).lower() != NULL_UUID
    ]
    assert not spelled, (
        f"{path.name} spells fixture UUIDs; use the name lookups of tests/fixtures/0000_test_helpers.sql "
        f"(tests.company_id('A'), tests.user_id('A', 'operador'), tests.new_id(...) for rows the test creates): "
        + ", ".join(spelled)
    )


@pytest.mark.parametrize("path", PGTAP_FILES, ids=lambda p: p.name)
def test_every_pgtap_file_declares_a_plan_equal_to_its_assertion_count(path: Path) -> None:
    statements = split_statements(path.read_text(encoding="utf-8"))
    single, many = _assertions(statements)
    plan = _plan(statements)
    literal = LITERAL_PLAN.fullmatch(plan)
    if literal:
        assert many == 0, f"{path.name}: assertions selected from rows need a computed plan"
        assert int(literal.group(1)) == single, (
            f"{path.name}: plan({literal.group(1)}) but the file has {single} assertions")
        return
    computed = COMPUTED_PLAN.match(plan)
    assert computed, f"{path.name}: a computed plan must read plan(<assertions written out> + <rows>): {plan[:80]}"
    assert many > 0, f"{path.name}: a computed plan without assertions selected from rows; use plan({single})"
    assert int(computed.group(1)) == single, (
        f"{path.name}: plan({computed.group(1)} + ...) but the file writes out {single} assertions")


def test_the_uuid_pattern_finds_a_fixture_id_and_spares_the_null_uuid() -> None:
    found = [m.group(0) for m in UUID_LITERAL.finditer(
        "where id = 'aaaaaaaa-0000-0000-0001-000000000001' or id = '00000000-0000-0000-0000-000000000000'")]
    assert found == ["aaaaaaaa-0000-0000-0001-000000000001", NULL_UUID]


def test_assertions_are_counted_once_and_rows_are_told_apart() -> None:
    sql = """select plan(2);
-- select ok(true, 'a comment is not an assertion');
select is((select count(*) from t), 1, 'a subquery is not a row source');
select throws_ok($$ select ok(false) from x $$, '42501', null, 'dollar-quoted text is not code');
select is(f(p.oid), 'ran', 'one per function') from pg_proc p;
select tests.act_as('A', 'owner');"""
    assert _assertions(split_statements(sql)) == (2, 1)


@pytest.mark.parametrize("path", [*PGTAP_FILES, *sorted((PGTAP_DIR.parent / "citus").glob("*.sql"))],
                         ids=lambda p: p.name)
def test_pgtap_files_keep_nothing_that_ends_with_a_statements_transaction(path: Path) -> None:
    """On a Citus cluster each statement of a file runs in a transaction of its own, the role
    and settings carried to the next (neurant_db.tap, docs/scale-out.md): a temp table
    dropped at commit would be gone for the next statement (the file's connection is closed
    after it anyway)."""
    code = _code(path.read_text(encoding="utf-8"))
    assert not re.search(r"\bon\s+commit\s+(drop|delete\s+rows)\b", code, re.IGNORECASE), (
        f"{path.name}: a temp table `on commit drop` or `delete rows` does not survive the next statement "
        "on a Citus cluster; create it without (it goes with the file's session)")
