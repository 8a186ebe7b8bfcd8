"""The isolation matrix asserts why a deny cell was denied: a policy weakened so
that only a trigger (a business-rule 42501) still stops the write fails the
matrix, and a spec cannot declare a business rule for a cell it allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurant_db.isolation import SpecError, generate_matrix_sql, load_spec
from neurant_db.tap import TapResult, run_tap_sql
from neurant_db.testdb import TestDatabase

SPEC = Path(__file__).resolve().parent / "isolation" / "access_spec.toml"
PEER_CELL = "administrador cannot update own company's peer_or_higher rows of public.users (RLS or grant)"
# update_lower_rank without its rank condition: RLS now lets an administrador reach
# the owner and its peers; only users_guard_update (42501, a business rule) stops it.
WEAKEN = """
alter policy update_lower_rank on public.users
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'))
  with check (company_id = (select private.get_user_company_id()));
"""


def users_cells(db: TestDatabase, before: str = "") -> TapResult:
    """The generated matrix cells of public.users, run after `before` in one rolled-back transaction."""
    cells = [line for line in generate_matrix_sql(db.url, SPEC).splitlines()
             if line.startswith("select tests.check_cell(") and "'public.users'::regclass" in line]
    sql = before + f"select plan({len(cells)});\n" + "\n".join(cells) + "\nselect * from finish();\n"
    return run_tap_sql(db.url, "users cells", sql, db.preamble())


def failed(result: TapResult) -> dict[str, list[str]]:
    assert result.error is None, result.error
    return {a.description: a.diagnostics for a in result.assertions if not a.ok}


def test_the_users_cells_pass_on_the_real_policies(neurant_db: TestDatabase) -> None:
    result = users_cells(neurant_db)
    assert failed(result) == {}
    assert any(a.description == PEER_CELL for a in result.assertions)


def test_a_weakened_policy_stopped_only_by_a_trigger_fails_the_matrix(neurant_db: TestDatabase) -> None:
    failures = failed(users_cells(neurant_db, WEAKEN))
    assert PEER_CELL in failures
    assert any("deny: rule 42501: a administrador cannot change a member of rank" in line
               for line in failures[PEER_CELL]), failures[PEER_CELL]


def test_a_declared_business_rule_cannot_cover_an_allowed_cell(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[table."public.chatbots"]\nupdate_set = "name = name"\n'
        '[table."public.chatbots".allow]\nupdate = ["owner"]\n'
        '[table."public.chatbots".deny_by_rule]\n"update owner" = "^42501: "\n', encoding="utf-8")
    with pytest.raises(SpecError, match="names a cell the spec allows"):
        load_spec(spec)


def test_the_spec_declares_the_rule_denied_cells(neurant_db: TestDatabase) -> None:
    users = load_spec(SPEC)["public.users"]
    assert users.expectation("service_role", "delete", "other").startswith("deny: rule ^42501: ")
    assert users.expectation("operador", "delete", "lower") == "deny"


def test_a_profile_override_applies_on_that_profile_only() -> None:
    users = load_spec(SPEC)["public.users"]
    assert users.expectation("owner", "delete", "lower") == "allow"
    citus = users.for_profiles({"citus"})
    assert citus.expectation("owner", "delete", "lower") == (
        "deny: rule ^42501: a member is removed only through public.remove_member on profile citus$")
    assert citus.expectation("owner", "update", "lower") == "allow"  # full_name stays direct
    assert users.for_profiles({"vanilla"}).expectation("owner", "delete", "lower") == "allow"


def test_a_profile_rule_cannot_cover_a_cell_the_profile_allows(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[table."public.chatbots"]\nupdate_set = "name = name"\n'
        '[table."public.chatbots".allow]\nupdate = ["owner"]\n'
        '[table."public.chatbots".on_profile.citus.deny_by_rule]\n"update owner" = "^42501: "\n', encoding="utf-8")
    with pytest.raises(SpecError, match=r"on profile citus.*names a cell the spec allows"):
        load_spec(spec)
