"""What profile citus changes at render time (docs/scale-out.md, CONVENTIONS.md "Profiles").

Three mechanisms, so that the vanilla and supabase texts stay byte-identical:

- template globals (`per_statement(...)`, `citus_settings()`, `citus_sequential()`,
  `transaction_token()`) a template may call;
- migrations whose opening comment says `-- neurant: profile citus`: rendered only on
  that profile (the other profiles do not even list them);
- four text rewrites applied to every rendered migration of profile citus only:
  in `create policy` / `alter policy` statements, `(select schema.helper())` becomes
  `schema.helper()` (Citus refuses SubLinks in the policies of distributed tables), and
  `tg_table_name` becomes `private.logical_table_name(tg_relid)` (inside a shard trigger
  TG_TABLE_NAME is the shard's name, `users_102008`), and the tenant guard's WHEN
  `row_security_active('<table>'::regclass)` becomes `row_security_active('<table>'::text)`:
  Citus creates a shard's triggers on a worker before the table's shell exists there, so a
  regclass constant fails (`42P01`); the text is resolved when the trigger fires (issue 19);
  and no policy is restrictive (`fold_read_only_check`): Citus 13.2 recreates a table's
  policies on its shards without `AS RESTRICTIVE` (commands/policy.c,
  CreatePolicyCommandForPolicy), so a restrictive policy would widen access there instead
  of narrowing it. The read-only check of policies/_read_only.sql is ANDed into each
  permissive insert/update/delete policy of a `read_only` table of schema/_tables.toml
  instead, and a restrictive deny-all (`using (false) with check (false)`) of a table with
  no other policy is rendered permissive (the same: nothing else admits a row).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from .errors import MigrationSourceError

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
# The read-only check (functions/0300): the restrictive policies of policies/_read_only.sql
# call it, and on profile citus every permissive write policy of a read-only table.
WRITABLE_CHECK = "private.require_company_writable()"
_NAME = r"[a-z_][a-z0-9_]*"
POLICY_HEADER = re.compile(
    rf"^\s*create\s+policy\s+(?P<name>{_NAME})\s+on\s+(?P<table>{_NAME}\.{_NAME})"
    r"(?:\s+as\s+(?P<kind>permissive|restrictive))?(?:\s+for\s+(?P<command>all|select|insert|update|delete))?"
    r"(?:\s+to\s+(?P<roles>[a-z_]+(?:\s*,\s*[a-z_]+)*))?", re.IGNORECASE)
CLAUSE = re.compile(r"\b(?:using|with\s+check)\s*\(", re.IGNORECASE)
DENY_ALL = re.compile(r"\busing\s*\(\s*false\s*\)\s*with\s+check\s*\(\s*false\s*\)\s*;$", re.IGNORECASE)


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


def template_globals(profile: str) -> dict[str, Callable[..., object]]:
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
            "citus_sequential": citus_sequential, "writable_check": lambda: WRITABLE_CHECK,
            "restrictive_policies": lambda: not citus, "transaction_token": transaction_token}


def unwrap_policy_helpers(sql: str) -> str:
    """`(select schema.helper())` -> `schema.helper()`, only inside policy statements."""
    return POLICY_STATEMENT.sub(lambda m: WRAPPED_HELPER.sub(r"\1", m.group(0)), sql)


def _closing(sql: str, opening: int) -> int:
    """The index of the parenthesis closing the one at `opening` (string literals skipped)."""
    depth, i = 0, opening
    while i < len(sql):
        c = sql[i]
        if c == "'":
            i = sql.index("'", i + 1)
            while sql.startswith("'", i + 1):  # '' inside a literal
                i = sql.index("'", i + 2)
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise MigrationSourceError(f"unbalanced parentheses in a policy: {sql[:80]}")


def _and_writable(statement: str) -> str:
    """`using (X)` / `with check (Y)` -> `using ((X) and <check>)` / `with check ((Y) and <check>)`."""
    out, pos = [], 0
    for clause in CLAUSE.finditer(statement):
        if clause.start() < pos:
            continue
        opening = clause.end() - 1
        closing = _closing(statement, opening)
        out.append(statement[pos:opening] + f"({statement[opening:closing + 1]} and {WRITABLE_CHECK})")
        pos = closing + 1
    return "".join(out) + statement[pos:]


def _comment_suffix(sql: str, name: str, table: str, suffix: str) -> str:
    """Append `suffix` to the COMMENT ON POLICY text of policy `name` on `table`."""
    comment = re.compile(rf"(\bcomment\s+on\s+policy\s+{name}\s+on\s+{re.escape(table)}\s+is\s+'(?:[^']|'')*)'",
                         re.IGNORECASE)
    return comment.sub(lambda m: m.group(1) + suffix + "'", sql, count=1)


FOLDED_NOTE = (f" Profile citus: ANDed with {WRITABLE_CHECK} (NA002 for a suspended or canceled company), "
               "Citus keeping no restrictive policy on its shards.")
DENY_NOTE = (" Profile citus: permissive, Citus keeping no restrictive policy on its shards; the table has "
             "no other policy, so it denies the same.")


def fold_read_only_check(sql: str, read_only: Collection[str]) -> str:
    """Profile citus has no restrictive policy (module docstring): fold the read-only check
    into every permissive write policy of a table of `read_only`; render a restrictive
    deny-all permissive; refuse any other restrictive policy, and any write policy of a
    read-only table the check cannot be folded into (FOR ALL, or not only TO authenticated)."""
    headers = [(m, POLICY_HEADER.match(m.group(0))) for m in POLICY_STATEMENT.finditer(sql)]
    created = [h["table"].lower() for _, h in headers if h]
    notes: list[tuple[str, str, str]] = []
    out, pos = [], 0
    for statement, header in headers:
        if not header:
            continue
        text, table, name = statement.group(0), header["table"].lower(), header["name"]
        command = (header["command"] or "all").lower()
        if (header["kind"] or "").lower() == "restrictive":
            if not DENY_ALL.search(text) or created.count(table) > 1:
                raise MigrationSourceError(
                    f"policy {name} on {table} is restrictive: Citus recreates it permissive on every shard",
                    hint="on profile citus fold its condition into the table's permissive policies "
                         "(runner/neurant_db/citus_render.py, docs/scale-out.md)")
            new = re.sub(r"\bas\s+restrictive\s+", "", text, count=1, flags=re.IGNORECASE)
            notes.append((name, table, DENY_NOTE))
        elif table in read_only and command != "select":
            roles = re.sub(r"\s+", "", (header["roles"] or "public").lower())
            if command == "all" or roles != "authenticated" or not CLAUSE.search(text):
                raise MigrationSourceError(
                    f"policy {name} on {table} (read_only in schema/_tables.toml) is for {command} to {roles}: "
                    "on profile citus the read-only check is folded into each write policy, which must be "
                    "for insert, update or delete, to authenticated, with its own condition",
                    hint="split it by command (docs/scale-out.md, \"What the citus rendering changes\")")
            new = _and_writable(text)
            notes.append((name, table, FOLDED_NOTE))
        else:
            continue
        out.append(sql[pos:statement.start()] + new)
        pos = statement.end()
    sql = "".join(out) + sql[pos:]
    for name, table, note in notes:
        sql = _comment_suffix(sql, name, table, note)
    return sql


def rewrite(sql: str, profile: str, read_only: Collection[str] = ()) -> str:
    """The rendered text of one migration as profile `profile` ships it; `read_only`: the
    tables whose registry entry says read_only = true (schema/_tables.toml)."""
    if profile != "citus":
        return sql
    sql = fold_read_only_check(sql, read_only)
    sql = TG_TABLE_NAME.sub("private.logical_table_name(tg_relid)", unwrap_policy_helpers(sql))
    return GUARD_WHEN.sub(r"\1::text)", sql)
