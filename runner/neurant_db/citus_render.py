"""What profile citus changes at render time (docs/scale-out.md, CONVENTIONS.md "Profiles").

Three mechanisms, so that the vanilla and supabase texts stay byte-identical:

- template globals (`per_statement(...)`, `citus_settings()`, `citus_sequential()`,
  `transaction_token()`) a template may call;
- migrations whose opening comment says `-- neurant: profile citus`: rendered only on
  that profile (the other profiles do not even list them);
- three text rewrites applied to every rendered migration of profile citus only:
  in `create policy` / `alter policy` statements, `(select schema.helper())` becomes
  `schema.helper()` (Citus refuses SubLinks in the policies of distributed tables), and
  `tg_table_name` becomes `private.logical_table_name(tg_relid)` (inside a shard trigger
  TG_TABLE_NAME is the shard's name, `users_102008`), and the tenant guard's WHEN
  `row_security_active('<table>'::regclass)` becomes `row_security_active('<table>'::text)`:
  Citus creates a shard's triggers on a worker before the table's shell exists there, so a
  regclass constant fails (`42P01`); the text is resolved when the trigger fires (issue 19).
"""

from __future__ import annotations

import re
from collections.abc import Callable

PROFILE_ONLY = re.compile(r"^--\s*neurant:\s*profile\s+(?P<profile>[a-z]+)\s*$")
POLICY_STATEMENT = re.compile(r"\b(?:create|alter)\s+policy\b[^;]*;", re.IGNORECASE)
# A scalar subquery around one helper call without arguments: (select private.get_user_role()).
WRAPPED_HELPER = re.compile(r"\(\s*select\s+((?:public|private|auth)\.[a-z_][a-z0-9_]*\(\s*\))\s*\)",
                            re.IGNORECASE)
TG_TABLE_NAME = re.compile(r"\btg_table_name\b", re.IGNORECASE)
GUARD_WHEN = re.compile(r"(\bpg_catalog\.row_security_active\('[a-z_][a-z0-9_.]*')::regclass\)")
NESTED_EXECUTION = "set citus.allow_nested_distributed_execution = on"
# Writes to tables with foreign keys to reference tables after a multi-shard statement need
# one connection per node ("cannot modify table ... because there was a parallel operation").
SEQUENTIAL = "set citus.multi_shard_modify_mode = 'sequential'"
# The audit purge's token (schema/0050, functions/3320): the id of the transaction, on Citus
# the distributed transaction's (the coordinator and every worker it writes through share it;
# a worker's own transaction id is not the coordinator's).
XACT_TOKEN = "pg_catalog.pg_current_xact_id()::text"
CITUS_XACT_TOKEN = "private.transaction_token()"  # schema/0050, citus only


def profile_only(sql: str) -> str | None:
    """The profile named by `-- neurant: profile <name>` in the opening comment, if any."""
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            return None
        match = PROFILE_ONLY.match(stripped)
        if match:
            return match["profile"]
    return None


def template_globals(profile: str) -> dict[str, Callable[..., str]]:
    """Functions every template may call; each renders the shape its profile needs."""
    citus = profile == "citus"

    def per_statement(expression: str) -> str:
        """A helper call evaluated once per statement: `(select f())`, bare `f()` on citus."""
        return expression if citus else f"(select {expression})"

    def citus_settings(indent: str = "  ") -> str:
        """Function settings a policy helper needs on Citus (a new line each), "" elsewhere."""
        return f"\n{indent}{NESTED_EXECUTION}" if citus else ""

    def citus_sequential(indent: str = "  ") -> str:
        """The setting of an RPC that writes several tables in one transaction on Citus."""
        return f"\n{indent}{SEQUENTIAL}" if citus else ""

    def transaction_token() -> str:
        """A text naming the current transaction, equal on every node it runs on."""
        return CITUS_XACT_TOKEN if citus else XACT_TOKEN

    return {"per_statement": per_statement, "citus_settings": citus_settings,
            "citus_sequential": citus_sequential, "transaction_token": transaction_token}


def unwrap_policy_helpers(sql: str) -> str:
    """`(select schema.helper())` -> `schema.helper()`, only inside policy statements."""
    return POLICY_STATEMENT.sub(lambda m: WRAPPED_HELPER.sub(r"\1", m.group(0)), sql)


def rewrite(sql: str, profile: str) -> str:
    """The rendered text of one migration as profile `profile` ships it."""
    if profile != "citus":
        return sql
    sql = TG_TABLE_NAME.sub("private.logical_table_name(tg_relid)", unwrap_policy_helpers(sql))
    return GUARD_WHEN.sub(r"\1::text)", sql)
