"""The online path: migrations that must not hold a lock on a big table for long.

A migration whose opening comment has the line `-- neurant: no-transaction` runs
outside a transaction (psycopg autocommit), one top-level statement at a time, so
it may `create index concurrently`, `drop index concurrently`, `reindex ...
concurrently`, or `alter table ... validate constraint` a constraint added `not
valid` by an earlier statement. Statements are split with sqlparse (dollar quotes,
strings and comments respected). What changes compared with the transactional path:

- the ledger row is written only after every statement succeeded; a failure
  records nothing and says exactly which statement failed. The statements before
  it stay applied (there is no transaction to undo them), so every statement of
  such a migration must be idempotent (`if not exists`, `if exists`): a rerun runs
  them all again;
- a failed `create index concurrently` leaves an INVALID index behind
  (pg_index.indisvalid = false): it is reported right after the failure, by
  `status` and by `doctor` (check `index.invalid`). On the rerun the runner drops
  an invalid index that the statement it is about to run creates (same schema and
  name) with `drop index concurrently`, so `if not exists` cannot skip over a
  broken index. It never drops any other index;
- the lock timeout of the settings applies to every statement (session level);
- the rollback file of such a migration runs the same way (and its ledger row is
  deleted only after every statement of the rollback succeeded).

The migration lock (locking.py) stays held meanwhile: its transaction is idle in
read committed and holds no snapshot, so a concurrent index build does not wait for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .database import DatabaseTarget
from .errors import MigrationFailed
from .ledger import LEDGER, forget_sql, ledger_entry, record_sql
from .render import Migration, sql_statements
from .settings import Settings

CREATE_INDEX_CONCURRENTLY = re.compile(
    r"^create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?"
    r"(?P<name>\"?[a-z_][a-z0-9_$]*\"?)\s+on\s+(?:only\s+)?"
    r"(?:(?P<schema>\"?[a-z_][a-z0-9_$]*\"?)\s*\.\s*)?(?P<table>\"?[a-z_][a-z0-9_$]*\"?)",
    re.IGNORECASE,
)

INVALID_INDEXES = """
select n.nspname, c.relname, t.relname, i.indisready
from pg_index i
join pg_class c on c.oid = i.indexrelid
join pg_class t on t.oid = i.indrelid
join pg_namespace n on n.oid = c.relnamespace
where not i.indisvalid and n.nspname not in ('pg_catalog', 'information_schema')
order by 1, 2
"""

Say = Callable[[str], None]


@dataclass(frozen=True)
class InvalidIndex:
    """An index a failed `create index concurrently` (or `reindex concurrently`) left behind."""

    schema: str
    name: str
    table: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def fix(self) -> str:
        return f"drop index concurrently if exists {self.qualified};"

    def describe(self) -> str:
        return (f"invalid index {self.qualified} on {self.schema}.{self.table}: left by a failed "
                f"CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY; it serves no query but slows every write. "
                f"Fix: `{self.fix}`, then run the migration again")


def invalid_indexes(conn: psycopg.Connection) -> list[InvalidIndex]:
    """Every index of the database that pg_index marks invalid (outside the system schemas)."""
    return [InvalidIndex(s, n, t) for s, n, t, _ready in conn.execute(INVALID_INDEXES).fetchall()]


def _unquote(name: str | None) -> str | None:
    if name is None:
        return None
    return name[1:-1] if name.startswith('"') else name.lower()


def _code(statement: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", statement, flags=re.S).strip()


def _drop_invalid_target(conn: psycopg.Connection, m: Migration, statement: str, say: Say) -> None:
    """Before a `create index concurrently NAME on [SCHEMA.]TABLE`: drop an invalid index
    NAME of the table's schema, left by an earlier failed attempt of this statement."""
    match = CREATE_INDEX_CONCURRENTLY.match(_code(statement))
    if not match:
        return
    name, schema, table = _unquote(match["name"]), _unquote(match["schema"]), _unquote(match["table"])
    row = conn.execute(
        "select n.nspname from pg_index i join pg_class c on c.oid = i.indexrelid"
        " join pg_namespace n on n.oid = c.relnamespace join pg_class t on t.oid = i.indrelid"
        " where not i.indisvalid and c.relname = %s and t.relname = %s"
        " and n.nspname = coalesce(%s, 'public')", (name, table, schema)).fetchone()
    if row:
        qualified = sql.Identifier(row[0], name or "")
        conn.execute(sql.SQL("drop index concurrently if exists {}").format(qualified))
        say(f"{m.id}: dropped the invalid index {row[0]}.{name} an earlier failed attempt left, "
            "before creating it again")


def _statement_error(m: Migration, direction: str, statements: list[str], index: int,
                     exc: psycopg.Error, left: list[InvalidIndex]) -> MigrationFailed:
    statement = " ".join(_code(statements[index]).split())
    if len(statement) > 120:
        statement = statement[:117] + "..."
    if isinstance(exc, psycopg.OperationalError) and not exc.diag.sqlstate:
        reason = f"the connection was lost: {str(exc).strip()}"
    else:
        state = f"[{exc.diag.sqlstate}] " if exc.diag.sqlstate else ""
        reason = f"{state}{(exc.diag.message_primary or str(exc)).strip()}"
        if exc.diag.message_detail:
            reason += f"\n{exc.diag.message_detail}"
    done = (f"statements 1-{index} of it ran and stay (it is not transactional)" if index > 1
            else "statement 1 of it ran and stays (it is not transactional)" if index == 1
            else "no statement of it ran")
    ledger = ("nothing was recorded in the ledger: it is still pending" if direction == "apply"
              else "its ledger row stays: it is still applied")
    lines = [f"{direction} of {m.id} failed at statement {index + 1} of {len(statements)}: `{statement}`: {reason}",
             f"{m.id} is a no-transaction migration: {done}; {ledger}"]
    lines += [f"  {i.describe()}" for i in left]
    return MigrationFailed(
        "\n".join(lines),
        hint="fix the cause (see the statement above) and run again: every statement runs again, so "
        "write them idempotent (`create index concurrently if not exists`, `drop index concurrently if "
        "exists`); an invalid index the retried statement creates is dropped by the runner first",
    )


def session_settings_sql(settings: Settings) -> str:
    """What the online path sets on its session before the first statement (the lint
    prepends it too, so squawk knows the lock timeout)."""
    return ("set search_path = pg_catalog, public;\n"
            f"set lock_timeout = '{int(settings.statement_lock_timeout_ms)}ms';\n"
            f"set statement_timeout = '{int(settings.statement_timeout_ms)}ms';\n")


def run_online(target: DatabaseTarget, m: Migration, settings: Settings, direction: str,
               say: Say | None = None) -> None:
    """Apply (or roll back) one no-transaction migration statement by statement, then
    write (or delete) its ledger row. MigrationFailed names the failing statement."""
    say = say or (lambda _text: None)
    text = m.apply_sql if direction == "apply" else m.rollback_sql
    statements = sql_statements(text)
    with target.connect(purpose=f"{'migrate' if direction == 'apply' else 'rollback'} (no transaction)") as conn:
        conn.execute(session_settings_sql(settings))
        present = conn.execute(f"select 1 from {LEDGER} where version = %s", (m.version,)).fetchone()
        if (direction == "apply") == bool(present):
            raise MigrationFailed(f"migration {m.id} is {'already' if present else 'not'} applied "
                                  "(another run changed the ledger)")
        for index, statement in enumerate(statements):
            try:
                if direction == "apply":
                    _drop_invalid_target(conn, m, statement, say)
                conn.execute(statement.encode("utf-8"))
            except psycopg.Error as exc:
                try:
                    left = invalid_indexes(conn)
                except psycopg.Error:
                    left = []
                raise _statement_error(m, direction, statements, index, exc, left) from None
        with conn.transaction():
            sql = record_sql(ledger_entry(m, settings)) if direction == "apply" else forget_sql(m.version)
            conn.execute(sql.encode("utf-8"))
