"""Run pgTAP SQL and parse its TAP output strictly.

Each file gets a fresh connection and one transaction that is always rolled
back: fixtures are loaded inside it, then the file's statements run one by one
(a leading BEGIN and trailing ROLLBACK in the file are absorbed; COMMIT is an
error). An SQL error fails the file but keeps the TAP produced before it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import sqlparse

from .database import connect

PLAN = re.compile(r"^1\.\.(\d+)(?:\s*#\s*(?i:skip)\b\s*(.*))?$")
RESULT = re.compile(r"^(not )?ok\b(?:\s+(\d+))?\s*(?:-\s*)?(.*)$")
DIRECTIVE = re.compile(r"(?<!\\)#\s*(TODO|SKIP)\b\s*(.*)$", re.IGNORECASE)


@dataclass
class TapAssertion:
    number: int
    ok: bool
    description: str
    directive: str | None = None  # "TODO" | "SKIP"
    reason: str = ""
    diagnostics: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Only a `not ok` without TODO fails; a TODO that fails is expected."""
        return not self.ok and self.directive != "TODO"


@dataclass
class TapResult:
    name: str
    plan: int | None = None
    skip_all: str | None = None
    assertions: list[TapAssertion] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    # Statements that failed and were undone alone (run_tap_sql's continue_after_errors).
    statement_errors: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.error is None and not self.problems and not self.statement_errors and not any(
            a.failed for a in self.assertions
        )

    def counts(self) -> dict[str, int]:
        return {
            "passed": sum(1 for a in self.assertions if a.ok and a.directive != "SKIP"),
            "failed": sum(1 for a in self.assertions if a.failed),
            "todo": sum(1 for a in self.assertions if a.directive == "TODO"),
            "skipped": sum(1 for a in self.assertions if a.directive == "SKIP"),
        }


class TapParser:
    """Feed TAP lines one at a time; call finish() to check the plan."""

    def __init__(self, result: TapResult) -> None:
        self.r = result
        self._plan_seen_at: int | None = None

    def feed(self, line: str) -> None:
        self.r.output.append(line)
        text = line.rstrip()
        if not text.strip():
            return
        if text.startswith("#"):
            diag = text[1:].strip()
            if self.r.assertions:
                self.r.assertions[-1].diagnostics.append(diag)
            else:
                self.r.diagnostics.append(diag)
            return
        plan = PLAN.match(text.strip())
        if plan:
            if self.r.plan is not None:
                self.r.problems.append(f"more than one plan line ({text.strip()})")
                return
            self.r.plan = int(plan.group(1))
            if plan.group(2) is not None:
                self.r.skip_all = plan.group(2) or "skipped"
            self._plan_seen_at = len(self.r.assertions)
            return
        res = RESULT.match(text.strip())
        if res:
            not_ok, number, rest = res.groups()
            expected = len(self.r.assertions) + 1
            num = int(number) if number else expected
            if num != expected:
                self.r.problems.append(f"test number {num} out of sequence (expected {expected})")
            directive = reason = None
            description = rest
            d = DIRECTIVE.search(rest)
            if d:
                directive = d.group(1).upper()
                reason = d.group(2).strip()
                description = rest[: d.start()].rstrip()
            self.r.assertions.append(
                TapAssertion(num, not_ok is None, description.replace("\\#", "#").strip(),
                             directive, reason or "")
            )
            return
        self.r.diagnostics.append(text)

    def finish(self) -> TapResult:
        r = self.r
        if r.error is None:
            if r.plan is None:
                r.problems.append("no plan: the file never called plan() or no_plan()/done_testing()")
            elif r.plan != len(r.assertions):
                r.problems.append(f"planned {r.plan} tests but ran {len(r.assertions)}")
            elif (
                self._plan_seen_at not in (0, len(r.assertions))
            ):
                r.problems.append("the plan line is neither at the start nor at the end")
        return r


def split_statements(sql: str) -> list[str]:
    return [s for s in (part.strip() for part in sqlparse.split(sql)) if s and _has_code(s)]


def _has_code(statement: str) -> bool:
    return bool(re.sub(r"--[^\n]*|/\*.*?\*/|\s|;", "", statement, flags=re.S))


def _keyword(statement: str) -> str:
    code = re.sub(r"--[^\n]*|/\*.*?\*/", " ", statement, flags=re.S).strip().rstrip(";").strip()
    return code.lower()


def _rows_as_lines(cur: psycopg.Cursor) -> list[str]:
    lines: list[str] = []
    while True:
        if cur.description is not None:
            for row in cur.fetchall():
                if row and row[0] is not None:
                    lines.extend(str(row[0]).split("\n"))
        if not cur.nextset():
            break
    return lines


def run_tap_sql(url: str, name: str, sql: str, preamble: list[tuple[str, str]], *,
                statement_transactions: bool = False, continue_after_errors: bool = False) -> TapResult:
    """Run pgTAP SQL on a fresh connection inside one rolled-back transaction.

    preamble: (label, sql) pairs run first in the same transaction (pgTAP, fixtures).
    statement_transactions: each statement in a transaction of its own, the preamble
    first, committed (pgTAP keeps its count in the session), on a Citus cluster, where one
    transaction cannot read as one user what another user wrote (25001). What the
    transaction held for the next statement goes on to it (LocalState: the role, the
    claims, the search path, the custom settings a statement set with set_config; and every
    `set constraints` and `set local`), so each statement runs as the file left it. Only on a database the
    caller throws away afterwards, or for SQL whose every statement undoes its own writes
    (the isolation matrix's probes roll back).
    continue_after_errors (with statement_transactions): a statement that fails is recorded
    in `statement_errors` and undone alone, and the next one runs as if it had not been
    sent (the plan then counts the assertions it held as not run).
    """
    result = TapResult(name)
    parser = TapParser(result)
    statements = split_statements(sql)
    if statements and _keyword(statements[0]) in ("begin", "start transaction"):
        statements = statements[1:]
    if statements and _keyword(statements[-1]) in ("rollback", "abort"):
        statements = statements[:-1]
    conn = connect(url, autocommit=True, purpose="pgtap")
    notices: list[str] = []
    replayed: list[str] = []
    names: set[str] = set()  # the custom settings the statements set (LocalState)
    conn.add_notice_handler(lambda d: notices.append(f"{d.severity}: {d.message_primary}"))
    def begin(carried: LocalState | None = None) -> str | None:
        conn.execute("begin")
        for label, text in preamble:
            try:
                conn.execute(text.encode("utf-8"))
            except psycopg.Error as exc:
                return f"setup {label} failed: {str(exc).strip()}"
        if carried is not None:
            try:
                carried.restore(conn)
                for text in replayed:
                    conn.execute(text.encode("utf-8"))
            except psycopg.Error as exc:
                return f"restoring the previous statement's role and settings failed: {str(exc).strip()}"
        return None

    try:
        result.error = begin()
        if result.error:
            return parser.finish()
        line_of = _line_index(sql)
        carried: LocalState | None = None
        failed_last = False
        for index, statement in enumerate(statements, start=1):
            if _keyword(statement) in ("commit", "end", "rollback", "begin"):
                result.error = (
                    f"statement {index} ({_keyword(statement).upper()}) would end the test "
                    "transaction; the runner owns it: remove it"
                )
                break
            try:
                if statement_transactions and index > 1:
                    if failed_last:  # its transaction is aborted: the state before it goes on
                        conn.execute("rollback")
                    else:
                        carried = LocalState.read(conn, names)
                        conn.execute("commit")
                    failed_last = False
                    result.error = begin(carried)
                    if result.error:
                        break
                cur = conn.execute(statement.encode("utf-8"))
                for line in _rows_as_lines(cur):
                    parser.feed(line)
                names |= custom_settings(statement)
                if statement_transactions and _replayed(_keyword(statement)):
                    replayed.append(statement)  # holds for the rest of the transaction: for every next one
            except psycopg.Error as exc:
                where = line_of(statement)
                diag = exc.diag
                state = f"[{diag.sqlstate}] " if diag.sqlstate else ""
                message = (
                    f"SQL error in statement {index}{where}: {state}"
                    f"{(diag.message_primary or str(exc)).strip()}"
                    + (f"\n  detail: {diag.message_detail}" if diag.message_detail else "")
                    + f"\n  statement: {statement[:300]}"
                )
                if statement_transactions and continue_after_errors:
                    result.statement_errors.append(message)
                    failed_last = True
                    continue
                result.error = message
                break
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.execute("rollback")
        conn.close()
    result.diagnostics.extend(notices)
    return parser.finish()


# What a statement leaves set for the rest of its transaction that the next statement of a
# pgTAP file relies on (tests/fixtures/0000_test_helpers.sql: the identity helpers).
LOCAL_STATE = """
select pg_catalog.current_setting('role'), pg_catalog.current_setting('search_path'),
       coalesce(pg_catalog.current_setting('request.jwt.claims', true), ''),
       coalesce(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
       coalesce((select pg_catalog.jsonb_object_agg(n, pg_catalog.current_setting(n, true))
                   from pg_catalog.unnest(%(names)s::text[]) n
                  where pg_catalog.current_setting(n, true) is not null), '{}')::text
"""
# The claims go as tests.set_claims sends them (after the role: docs/services.md section 11).
RESTORE_STATE = """
select pg_catalog.set_config('search_path', %(path)s, true),
       pg_catalog.set_config('role', %(role)s, true),
       pg_catalog.set_config('request.jwt.claim.sub', %(sub)s, true),
       (select count(pg_catalog.set_config(k, v, true)) from pg_catalog.jsonb_each_text(%(custom)s::jsonb) as e(k, v))
"""
# Custom settings a statement sets by name (placeholders are not listed in pg_settings).
SET_CONFIG = re.compile(r"set_config\(\s*'([a-z_][a-z0-9_]*\.[a-z0-9_.]+)'", re.IGNORECASE)
CARRIED_ELSEWHERE = {"request.jwt.claims", "request.jwt.claim.sub"}
# Set with SET LOCAL by tests.set_claims on a Citus cluster: the later SET LOCALs reach the workers.
ALWAYS_CARRIED = {"citus.propagate_set_commands"}


def _replayed(keyword: str) -> bool:
    """A statement whose effect lasts for the rest of the transaction, replayed after each
    commit (the role and the search path are carried by LocalState, which a later statement
    may have changed)."""
    return keyword.startswith("set constraints") or (
        keyword.startswith("set local") and not re.match(r"set local (role|session|search_path)\b", keyword))


def custom_settings(statement: str) -> set[str]:
    """The custom settings (`prefix.name`) a statement sets with set_config('<name>', ...)."""
    return {m.group(1).lower() for m in SET_CONFIG.finditer(statement)} - CARRIED_ELSEWHERE


@dataclass(frozen=True)
class LocalState:
    """The transaction-local role and settings a statement left for the next one."""

    role: str
    search_path: str
    claims: str
    sub: str
    custom: str

    @classmethod
    def read(cls, conn: psycopg.Connection, names: set[str]) -> LocalState:
        row = conn.execute(LOCAL_STATE, {"names": sorted(names | ALWAYS_CARRIED)}).fetchone()
        assert row is not None
        return cls(*(str(v) for v in row))

    def restore(self, conn: psycopg.Connection) -> None:
        conn.execute(RESTORE_STATE, {"path": self.search_path, "role": self.role, "sub": self.sub,
                                     "custom": self.custom})
        if self.claims:
            conn.execute("select tests.set_claims(%s)", (self.claims,))


def _line_index(sql: str):  # type: ignore[no-untyped-def]
    def line_of(statement: str) -> str:
        pos = sql.find(statement)
        return f" (line {sql.count(chr(10), 0, pos) + 1})" if pos >= 0 else ""

    return line_of


def run_tap_file(url: str, path: Path, preamble: list[tuple[str, str]], *,
                 statement_transactions: bool = False) -> TapResult:
    return run_tap_sql(url, str(path), path.read_text(encoding="utf-8"), preamble,
                       statement_transactions=statement_transactions)
