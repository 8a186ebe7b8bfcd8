"""Plan, apply, roll back and inspect migrations through yoyo, closing its gaps.

- bookkeeping is atomic: each rendered migration ends by inserting its ledger row
  (rollbacks end by deleting it), inside the migration's own transaction;
- drift: the ledger keeps the checksum of the rendered SQL; status reports
  changed applied migrations and migrate refuses to run over them;
- locking: a row lock in neurant_meta (see locking.py), stale yoyo lock rows broken;
- a migration without a rollback is refused at discovery (render.py), and a
  rollback that renders to nothing for a migration that does something is an error.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from . import __version__
from .database import DatabaseTarget
from .errors import BadArgument, DriftDetected, MigrationFailed, MigrationSourceError
from .ledger import LEDGER, META_SCHEMA, LedgerRow, bootstrap, read_ledger, sql_literal
from .locking import LockWaitWatch, migration_lock
from .render import Migration
from .settings import Settings

YOYO_TABLE = "_yoyo_migration"
COMMENT_OR_BLANK = re.compile(r"(--[^\n]*|\s+)")


@dataclass(frozen=True)
class MigrationState:
    """One line of `status`."""

    version: int
    id: str
    state: str  # applied | pending | drifted | missing
    applied_at: str | None = None
    checksum: str | None = None
    applied_checksum: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "id": self.id,
            "state": self.state,
            "applied_at": self.applied_at,
            "checksum": self.checksum,
            "applied_checksum": self.applied_checksum,
        }


@dataclass
class RunResult:
    applied: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)  # dry-run output


Progress = Callable[[str, Migration], None]


def _has_sql(text: str) -> bool:
    return bool(COMMENT_OR_BLANK.sub("", text).strip(";"))


def header(m: Migration, settings: Settings, direction: str) -> str:
    return (
        f"-- neurant-db {direction}: {m.id} (checksum {m.checksum})\n"
        "set local search_path = pg_catalog, public;\n"
        f"set local lock_timeout = '{settings.statement_lock_timeout_ms}ms';\n"
        f"set local statement_timeout = '{settings.statement_timeout_ms}ms';\n"
    )


def wrapped_apply(m: Migration, settings: Settings) -> str:
    """The exact SQL `migrate` runs for m, in one transaction."""
    guard = (
        "do $neurant_guard$ begin\n"
        f"  if exists (select 1 from {LEDGER} where version = {m.version}) then\n"
        f"    raise exception 'migration {m.id} is already applied' using errcode = '55000';\n"
        "  end if;\nend $neurant_guard$;\n"
    )
    record = (
        f"insert into {LEDGER} (version, name, checksum, rollback_checksum, runner_version) values "
        f"({m.version}, {sql_literal(m.id)}, {sql_literal(m.checksum)}, "
        f"{sql_literal(m.rollback_checksum)}, {sql_literal(__version__)});\n"
    )
    return header(m, settings, "apply") + guard + m.apply_sql.rstrip() + "\n;\n" + record


def wrapped_rollback(m: Migration, settings: Settings) -> str:
    """The exact SQL `rollback` runs for m, in one transaction."""
    forget = (
        f"delete from {LEDGER} where version = {m.version};\n"
    )
    return header(m, settings, "rollback") + m.rollback_sql.rstrip() + "\n;\n" + forget


def check_rollbacks(migrations: list[Migration]) -> None:
    empty = [m.id for m in migrations if _has_sql(m.apply_sql) and not _has_sql(m.rollback_sql)]
    if empty:
        raise MigrationSourceError(
            "these migrations have a rollback file that does nothing: " + ", ".join(empty),
            hint="write the SQL that undoes the migration; a rollback is never a silent no-op",
        )


def compute_status(migrations: list[Migration], ledger: dict[int, LedgerRow]) -> list[MigrationState]:
    by_version = {m.version: m for m in migrations}
    states: list[MigrationState] = []
    for version in sorted(set(by_version) | set(ledger)):
        m = by_version.get(version)
        row = ledger.get(version)
        if m is None and row is not None:
            states.append(
                MigrationState(version, row.name, "missing", row.applied_at.isoformat(),
                               None, row.checksum)
            )
        elif m is not None and row is None:
            states.append(MigrationState(version, m.id, "pending", None, m.checksum))
        elif m is not None and row is not None:
            rollback_changed = (row.rollback_checksum is not None
                                and row.rollback_checksum != m.rollback_checksum)
            state = "applied" if row.checksum == m.checksum and not rollback_changed else "drifted"
            states.append(
                MigrationState(version, m.id, state, row.applied_at.isoformat(),
                               m.checksum, row.checksum)
            )
    return states


def status(target: DatabaseTarget, migrations: list[Migration]) -> list[MigrationState]:
    with target.connect(purpose="status") as conn:
        return compute_status(migrations, read_ledger(conn))


def _drift_error(states: list[MigrationState]) -> DriftDetected:
    drifted = [s.id for s in states if s.state == "drifted"]
    return DriftDetected(
        "applied migrations changed since they were applied: " + ", ".join(drifted),
        hint="a released migration is never edited: restore the file and add a new migration "
        "(or pass --allow-drift if you know the change is cosmetic)",
    )


def _yoyo_backend(target: DatabaseTarget, purpose: str) -> Any:
    from yoyo import get_backend

    # Both of yoyo's sessions (bookkeeping, and one per migration) connect from this URI.
    backend = get_backend(target.yoyo_uri(purpose, schema=META_SCHEMA), YOYO_TABLE)
    backend.break_lock()  # we hold the migration lock: any yoyo_lock row is stale
    return backend


def _yoyo_migrations(selected: list[Migration], settings: Settings, workdir: Path) -> dict[int, Any]:
    """Write each migration as a one-step yoyo migration and load them back.

    The whole rendered text is one step: psycopg 3 sends it as one simple query,
    so dollar-quoted bodies never go through a statement splitter.
    """
    from yoyo import read_migrations

    for m in selected:
        (workdir / f"{m.id}.py").write_text(
            "from yoyo import step\n"
            "__transactional__ = True\n"
            f"steps = [step({wrapped_apply(m, settings)!r}, {wrapped_rollback(m, settings)!r})]\n",
            encoding="utf-8",
        )
    loaded = read_migrations(str(workdir))
    ids = {m.id: m.version for m in selected}
    return {ids[ym.id]: ym for ym in loaded}


def _migration_error(m: Migration, exc: psycopg.Error, direction: str, settings: Settings,
                     done: list[str], blocker: str | None = None) -> MigrationFailed:
    if isinstance(exc, psycopg.OperationalError) and not exc.diag.sqlstate:
        # No server answer: the connection died, possibly during COMMIT.
        return MigrationFailed(
            f"the connection was lost during the {direction} of {m.id}: {str(exc).strip()}\n"
            f"whether {m.id} committed is unknown; its ledger row says (the ledger is written "
            "in the same transaction)",
            hint="run `neurant-db status` to see whether it is applied, then run again",
        )
    diag = exc.diag
    text = wrapped_apply(m, settings) if direction == "apply" else wrapped_rollback(m, settings)
    where = ""
    if diag.statement_position:
        pos = int(diag.statement_position)
        line_no = text.count("\n", 0, pos - 1) + 1
        line = text.splitlines()[line_no - 1].strip() if line_no <= len(text.splitlines()) else ""
        where = f" at line {line_no} of the rendered SQL: {line}"
    state = f"[{diag.sqlstate}] " if diag.sqlstate else ""
    message = (diag.message_primary or str(exc)).strip()
    detail = f"\n{diag.message_detail}" if diag.message_detail else ""
    hint = diag.message_hint or "fix the migration (see `neurant-db render`) and run again"
    if diag.sqlstate == "55P03":  # lock_timeout: name who held the lock
        detail += f"\n{blocker}" if blocker else ""
        hint = ("let the blocking session finish (or end it with pg_terminate_backend) and run again; "
                f"statement_lock_timeout_ms ({settings.statement_lock_timeout_ms}) bounds each lock wait")
    elif diag.sqlstate == "57014" and "statement timeout" in message:
        hint = (f"a statement ran longer than statement_timeout_ms ({settings.statement_timeout_ms}); "
                "raise it, or pass --statement-timeout SECONDS (0: no limit)")
    earlier = (
        f"; the {len(done)} migration(s) before it in this run stay applied ({', '.join(done)})"
        if done else ""
    )
    return MigrationFailed(
        f"{direction} of {m.id} failed: {state}{message}{where}{detail}\n"
        f"{m.id} was rolled back as a whole, nothing of it remains{earlier}",
        hint=hint,
    )


def _reconcile_yoyo(backend: Any, ledger: dict[int, LedgerRow], ymigs: dict[int, Any]) -> None:
    """Make yoyo's table agree with the ledger (the ledger is the truth)."""
    applied_hashes = set(backend.get_applied_migration_hashes())
    for version, ym in ymigs.items():
        marked = ym.hash in applied_hashes
        if version in ledger and not marked:
            backend.mark_migrations([ym])
        elif version not in ledger and marked:
            backend.unmark_migrations([ym])


def migrate(
    target: DatabaseTarget,
    migrations: list[Migration],
    settings: Settings,
    *,
    to_version: int | None = None,
    dry_run: bool = False,
    allow_drift: bool = False,
    allow_out_of_order: bool = False,
    lock_timeout_s: float = 30.0,
    progress: Progress | None = None,
) -> RunResult:
    """Apply pending migrations (up to to_version) in version order."""
    check_rollbacks(migrations)
    if to_version is not None and to_version not in {m.version for m in migrations}:
        raise BadArgument(f"--to {to_version:04d}: no migration has that version")
    result = RunResult()
    with migration_lock(target, lock_timeout_s, create=not dry_run, command="migrate"), \
            target.connect(purpose="migrate") as conn:
        ledger = read_ledger(conn)
        states = compute_status(migrations, ledger)
        if any(s.state == "drifted" for s in states) and not allow_drift:
            raise _drift_error(states)
        pending = [
            m for m in migrations
            if m.version not in ledger and (to_version is None or m.version <= to_version)
        ]
        newest = max(ledger, default=0)
        behind = [m.id for m in pending if m.version < newest]
        if behind and not allow_out_of_order:
            raise MigrationSourceError(
                f"pending migrations are older than the newest applied one ({ledger[newest].name}): "
                + ", ".join(behind),
                hint="give new migrations a higher number; pass --allow-out-of-order only if "
                "you checked they do not depend on anything applied after them",
            )
        if dry_run:
            result.sql = [wrapped_apply(m, settings) for m in pending]
            return result
        if not pending:
            return result
        bootstrap(conn)
        with tempfile.TemporaryDirectory(prefix="neurant-migrate-") as tmp:
            ymigs = _yoyo_migrations(migrations, settings, Path(tmp))
            backend = _yoyo_backend(target, "migrate")
            try:
                _reconcile_yoyo(backend, ledger, ymigs)
                with LockWaitWatch(target, "migrate") as watch:
                    for m in pending:
                        if progress:
                            progress("apply", m)
                        watch.blocker = None
                        try:
                            backend.apply_one(ymigs[m.version])
                        except psycopg.Error as exc:
                            raise _migration_error(m, exc, "apply", settings, result.applied,
                                                   watch.blocker) from None
                        result.applied.append(m.id)
            finally:
                backend.connection.close()
    return result


def rollback(
    target: DatabaseTarget,
    migrations: list[Migration],
    settings: Settings,
    *,
    to_version: int | None = None,
    steps: int | None = None,
    dry_run: bool = False,
    lock_timeout_s: float = 30.0,
    progress: Progress | None = None,
) -> RunResult:
    """Roll back applied migrations newer than to_version (or the last `steps` ones)."""
    if (to_version is None) == (steps is None):
        raise BadArgument("say what to roll back: --to VERSION or --steps N (one of them)")
    if steps is not None and steps < 1:
        raise BadArgument("--steps must be at least 1")
    check_rollbacks(migrations)
    by_version = {m.version: m for m in migrations}
    result = RunResult()
    with migration_lock(target, lock_timeout_s, create=not dry_run, command="rollback"), \
            target.connect(purpose="rollback") as conn:
        ledger = read_ledger(conn)
        applied = sorted(ledger, reverse=True)
        if to_version is not None and to_version != 0 and to_version not in ledger:
            raise BadArgument(
                f"--to {to_version:04d} is not an applied migration",
                hint="name an applied version (see `neurant-db status`), or --to 0 to roll back everything",
            )
        chosen = applied[:steps] if steps is not None else [v for v in applied if v > (to_version or 0)]
        missing = [ledger[v].name for v in chosen if v not in by_version]
        if missing:
            raise MigrationSourceError(
                "cannot roll back migrations whose files are gone: " + ", ".join(missing),
                hint="restore the files from the release that applied them",
            )
        drifted = [by_version[v].id for v in chosen if by_version[v].checksum != ledger[v].checksum]
        if drifted:
            raise DriftDetected(
                "refusing to roll back migrations that changed since they were applied: "
                + ", ".join(drifted),
                hint="their rollback may not match what is in the database; restore the files",
            )
        todo = [by_version[v] for v in chosen]
        if dry_run:
            result.sql = [wrapped_rollback(m, settings) for m in todo]
            return result
        if not todo:
            return result
        with tempfile.TemporaryDirectory(prefix="neurant-rollback-") as tmp:
            ymigs = _yoyo_migrations(migrations, settings, Path(tmp))
            backend = _yoyo_backend(target, "rollback")
            try:
                _reconcile_yoyo(backend, ledger, ymigs)
                with LockWaitWatch(target, "rollback") as watch:
                    for m in todo:
                        if progress:
                            progress("rollback", m)
                        watch.blocker = None
                        try:
                            backend.rollback_one(ymigs[m.version])
                        except psycopg.Error as exc:
                            raise _migration_error(m, exc, "rollback", settings,
                                                   result.rolled_back, watch.blocker) from None
                        result.rolled_back.append(m.id)
            finally:
                backend.connection.close()
    return result
