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

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from . import preflight
from .database import DatabaseTarget
from .errors import BadArgument, DriftDetected, MigrationFailed, MigrationSourceError, NeurantError
from .ledger import (
    BOOTSTRAP_SQL,
    LEDGER,
    META_SCHEMA,
    LedgerRow,
    baseline_rows,
    bootstrap,
    forget_sql,
    ledger_entry,
    ledger_row_count,
    read_ledger,
    record_sql,
    repair_rows,
)
from .locking import LOCK_TABLE_SQL, TAKE_SQL, LockWaitWatch, migration_lock
from .online import run_online, session_settings_sql
from .render import Migration, discover, render_all, sql_statements
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
    baselined: bool = False
    # Why a drifted migration drifted: "settings" (the file is unchanged, the render
    # settings are not), "edited" (the file changed); `detail` says it in words.
    cause: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "id": self.id,
            "state": self.state,
            "applied_at": self.applied_at,
            "checksum": self.checksum,
            "applied_checksum": self.applied_checksum,
            "baselined": self.baselined,
            "cause": self.cause,
            "detail": self.detail,
        }


@dataclass
class RunResult:
    applied: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)  # dry-run output
    planned: list[str] = field(default_factory=list)  # dry-run: the ids it would apply
    script: str = ""  # dry-run: the psql-runnable plan (plan_script)
    notes: list[str] = field(default_factory=list)  # what the no-transaction path did on its own
    warnings: list[str] = field(default_factory=list)  # pre-flight warnings (nothing failed)


Progress = Callable[[str, Migration], None]
# Asked before a rollback that drops tables holding rows: (table, rows) -> go ahead?
Confirm = Callable[[list[tuple[str, int]]], bool]


def _has_sql(text: str) -> bool:
    return bool(COMMENT_OR_BLANK.sub("", text).strip(";"))


def header(m: Migration, settings: Settings, direction: str) -> str:
    return (
        f"-- neurant-db {direction}: {m.id} (checksum {m.checksum})\n"
        "set local search_path = pg_catalog, public;\n"
        f"set local lock_timeout = '{settings.statement_lock_timeout_ms}ms';\n"
        f"set local statement_timeout = '{settings.statement_timeout_ms}ms';\n"
        # profile citus: the DDL of a migration on distributed and reference tables in one
        # connection per node (a reference table changed after a parallel shard DDL fails)
        + ("set local citus.multi_shard_modify_mode = 'sequential';\n" if settings.profile == "citus" else "")
    )


def wrapped_apply(m: Migration, settings: Settings) -> str:
    """The exact SQL `migrate` runs for m, in one transaction."""
    guard = (
        "do $neurant_guard$ begin\n"
        f"  if exists (select 1 from {LEDGER} where version = {m.version}) then\n"
        f"    raise exception 'migration {m.id} is already applied' using errcode = '55000';\n"
        "  end if;\nend $neurant_guard$;\n"
    )
    record = record_sql(ledger_entry(m, settings))
    return header(m, settings, "apply") + guard + m.apply_sql.rstrip() + "\n;\n" + record


def wrapped_rollback(m: Migration, settings: Settings) -> str:
    """The exact SQL `rollback` runs for m, in one transaction."""
    forget = forget_sql(m.version)
    return header(m, settings, "rollback") + m.rollback_sql.rstrip() + "\n;\n" + forget


def plan_script(pending: list[Migration], settings: Settings, target: str = "") -> str:
    """What `migrate --dry-run` prints: a script `psql -v ON_ERROR_STOP=1 -f` runs on the
    target to the same result as `migrate`. The ledger (and lock table) are created first;
    each migration then runs in its own transaction ending with its ledger row, exactly the
    text `migrate` runs, after taking the migration lock row (a running `migrate` makes
    the script stop instead of interleaving with it)."""
    if not pending:
        return "-- nothing to apply\n"
    ids = ", ".join(m.id for m in pending)
    on = f" on {target}" if target else ""
    parts = [
        f"-- neurant-db migrate plan{on}: {len(pending)} migration(s): {ids}\n"
        "-- run it with: psql -X -v ON_ERROR_STOP=1 -f plan.sql\n"
        "begin;\n" + BOOTSTRAP_SQL.strip() + "\n" + LOCK_TABLE_SQL.strip() + "\ncommit;\n",
    ]
    for m in pending:
        if m.transactional:
            parts.append("begin;\n" + TAKE_SQL + ";\n" + wrapped_apply(m, settings).rstrip() + "\ncommit;\n")
        else:
            parts.append(_online_plan(m, settings))
    return "\n".join(parts)


def _online_plan(m: Migration, settings: Settings) -> str:
    """A `-- neurant: no-transaction` migration in the plan: its statements one by one
    (psql autocommits each), then its ledger row, as the online path of `migrate` does."""
    statements = "\n".join(st.rstrip().rstrip(";") + ";" for st in sql_statements(m.apply_sql))
    return (f"-- neurant-db apply (no transaction): {m.id} (checksum {m.checksum})\n"
            + session_settings_sql(settings) + statements + "\n"
            + "begin;\n" + record_sql(ledger_entry(m, settings)) + "commit;\n")


def settings_changes(recorded: dict[str, Any] | None, settings: Settings) -> list[str]:
    """`embedding_dimensions=1536, now 8` for every render setting that differs."""
    if not recorded:
        return []
    now = settings.template_context()
    return [f"{k}={recorded[k]!r}, now {now.get(k)!r}".replace("'", "")
            for k in sorted(recorded) if recorded[k] != now.get(k)]


def explain_drift(states: list[MigrationState], ledger: dict[int, LedgerRow],
                  settings: Settings | None, root: Path | None = None) -> list[MigrationState]:
    """Say why each drifted migration drifted: re-rendered with the settings recorded
    at apply time, an unchanged file gives back the recorded checksum."""
    if settings is None:
        return states
    renders: dict[str, dict[int, Migration] | None] = {}
    out = []
    for s in states:
        row = ledger.get(s.version)
        if s.state != "drifted" or row is None:
            out.append(s)
            continue
        changes = settings_changes(row.settings, settings)
        if not changes:
            which = "rollback file" if row.checksum == s.checksum else "file"
            unknown = "" if row.settings else " (no render settings recorded for it)"
            out.append(replace(s, cause="edited", detail=f"the {which} changed since it was applied{unknown}"))
            continue
        key = json.dumps(row.settings, sort_keys=True)
        if key not in renders:
            try:
                old = Settings(**(row.settings or {})).validate()
                renders[key] = {m.version: m for m in render_all(old, root)}
            except (NeurantError, TypeError):
                renders[key] = None
        old_render = (renders[key] or {}).get(s.version)
        same_file = (old_render is not None and old_render.checksum == row.checksum
                     and row.rollback_checksum in (None, old_render.rollback_checksum))
        rendered = "rendered with " + "; ".join(changes)
        if same_file:
            out.append(replace(s, cause="settings", detail=f"{rendered} (the file is unchanged)"))
        else:
            out.append(replace(s, cause="edited", detail=f"the file changed; also {rendered}"))
    return out


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
                               m.checksum, row.checksum, baselined=row.kind == "baselined")
            )
    return states


def status(target: DatabaseTarget, migrations: list[Migration],
           settings: Settings | None = None) -> list[MigrationState]:
    with target.connect(purpose="status") as conn:
        ledger = read_ledger(conn)
    return explain_drift(compute_status(migrations, ledger), ledger, settings)


def _drift_error(states: list[MigrationState]) -> DriftDetected:
    drifted = [s for s in states if s.state == "drifted"]
    by_settings = [s for s in drifted if s.cause == "settings"]
    if by_settings and len(by_settings) == len(drifted):
        return DriftDetected(
            "the database was migrated with other render settings: "
            + ", ".join(f"{s.id} ({s.detail})" for s in by_settings),
            hint="run with the settings the database was built with (neurant-db.toml or "
            "--profile/--embedding-dimensions); changing a setting of applied migrations "
            "needs a new migration",
        )
    return DriftDetected(
        "applied migrations changed since they were applied: "
        + ", ".join(f"{s.id} ({s.detail})" if s.detail else s.id for s in drifted),
        hint="a released migration is never edited: restore the file and add a new migration "
        "(or pass --allow-drift if you know the change is cosmetic, or `neurant-db repair "
        "--reason ...` to accept the new checksum)",
    )


def _missing_error(states: list[MigrationState]) -> DriftDetected:
    """Applied migrations whose files this package does not have: the database is ahead of
    (or apart from) this checkout, so nothing may be applied on top of it."""
    missing = [s.id for s in states if s.state == "missing"]
    return DriftDetected(
        "applied migrations have no file here: " + ", ".join(missing),
        hint="the database was migrated by another version of neurant-db: use that version (or "
        "a newer one), or restore the files; `neurant-db status` lists them",
    )


def _yoyo_backend(target: DatabaseTarget, purpose: str) -> Any:
    from yoyo import get_backend

    # Both of yoyo's sessions (bookkeeping, and one per migration) connect from this URI.
    backend = get_backend(target.yoyo_uri(purpose, schema=META_SCHEMA), YOYO_TABLE)
    backend.break_lock()  # we hold the migration lock: any yoyo_lock row is stale
    return backend


def _yoyo_migrations(selected: list[Migration], settings: Settings, workdir: Path) -> dict[int, Any]:
    """Write each migration as a yoyo migration and load them back.

    The whole rendered text is one step: psycopg 3 sends it as one simple query,
    so dollar-quoted bodies never go through a statement splitter; except on profile
    citus (_yoyo_steps).
    """
    from yoyo import read_migrations

    for m in selected:
        (workdir / f"{m.id}.py").write_text(
            "from yoyo import step\n"
            "__transactional__ = True\n"
            f"steps = [{', '.join(_yoyo_steps(m, settings))}]\n",
            encoding="utf-8",
        )
    loaded = read_migrations(str(workdir))
    ids = {m.id: m.version for m in selected}
    return {ids[ym.id]: ym for ym in loaded}


def _yoyo_steps(m: Migration, settings: Settings) -> list[str]:
    """The yoyo steps of m, as Python source: one step holding the whole text, or on profile
    citus one step per statement (still one transaction). Citus sends the DDL of a
    distributed table's index to the shards as the query string that held it, which fails
    on the workers when that string holds several statements ("cannot insert multiple
    commands into a prepared statement", issue 19). yoyo runs the rollbacks of the steps
    last first, so the rollback statements are dealt to the steps from the last one."""
    apply, rollback = wrapped_apply(m, settings), wrapped_rollback(m, settings)
    if settings.profile != "citus":
        return [f"step({apply!r}, {rollback!r})"]
    forward, backward = sql_statements(apply), sql_statements(rollback)
    count = max(len(forward), len(backward))
    forward += ["select 1"] * (count - len(forward))
    backward += ["select 1"] * (count - len(backward))
    return [f"step({forward[i]!r}, {backward[count - 1 - i]!r})" for i in range(count)]


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
    fallback = "fix the migration (see `neurant-db render`) and run again"
    if (diag.sqlstate or "").startswith("42501") or (diag.sqlstate or "") == "42P06":
        # A missing privilege or an object already there is the server's or the role's
        # state, not the migration's fault.
        fallback = ("the applying role lacks a privilege or the database holds a conflicting object: "
                    "`neurant-db preflight` lists what the migrations need (docs/deploy.md)")
    return MigrationFailed(
        f"{direction} of {m.id} failed: {state}{message}{where}{detail}\n"
        f"{m.id} was rolled back as a whole, nothing of it remains{earlier}",
        hint=fallback if hint == "fix the migration (see `neurant-db render`) and run again" else hint,
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


def _apply_online(target: DatabaseTarget, backend: Any, ymig: Any, m: Migration, settings: Settings,
                  direction: str, notes: list[str]) -> None:
    """A `-- neurant: no-transaction` migration: statement by statement (online.py), then
    yoyo's table is brought in line with the ledger row the online path wrote or deleted."""
    run_online(target, m, settings, direction, say=notes.append)
    if direction == "apply":
        backend.mark_migrations([ymig])
    else:
        backend.unmark_migrations([ymig])


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
    # Before the lock (whose table is itself a first write): every problem at once, nothing applied.
    checked = preflight.require(target, migrations, settings, to_version=to_version)
    result.warnings = [f"[{c.check}] {c.message} ({c.fix})" for c in checked.warnings]
    with migration_lock(target, lock_timeout_s, create=not dry_run, command="migrate") as stopped, \
            target.connect(purpose="migrate dry-run" if dry_run else "migrate") as conn:
        result.notes += stopped
        ledger = read_ledger(conn)
        states = explain_drift(compute_status(migrations, ledger), ledger, settings)
        if any(s.state == "drifted" for s in states) and not allow_drift:
            raise _drift_error(states)
        if any(s.state == "missing" for s in states):
            raise _missing_error(states)
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
            result.planned = [m.id for m in pending]
            result.script = plan_script(pending, settings, target.redacted)
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
                        if not m.transactional:
                            _apply_online(target, backend, ymigs[m.version], m, settings, "apply", result.notes)
                            result.applied.append(m.id)
                            continue
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
    confirm: Confirm | None = None,
) -> RunResult:
    """Roll back applied migrations newer than to_version (or the last `steps` ones).

    With `confirm`, a rollback that would drop tables holding rows runs only when
    confirm(those tables and their row counts) says yes; otherwise nothing is done."""
    if (to_version is None) == (steps is None):
        raise BadArgument("say what to roll back: --to VERSION or --steps N (one of them)")
    if steps is not None and steps < 1:
        raise BadArgument("--steps must be at least 1")
    check_rollbacks(migrations)
    by_version = {m.version: m for m in migrations}
    result = RunResult()
    with migration_lock(target, lock_timeout_s, create=not dry_run, command="rollback") as stopped, \
            target.connect(purpose="rollback dry-run" if dry_run else "rollback") as conn:
        result.notes += stopped
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
        if confirm is not None:
            losing = tables_with_rows(conn, todo)
            if losing and not confirm(losing):
                raise RollbackRefused(
                    f"refusing to roll back {target.redacted}: it drops "
                    + ", ".join(f"{t} ({_rows_text(n)})" for t, n in losing),
                    hint="pass --yes to drop them (after a backup), or roll back fewer migrations",
                )
        with tempfile.TemporaryDirectory(prefix="neurant-rollback-") as tmp:
            ymigs = _yoyo_migrations(migrations, settings, Path(tmp))
            backend = _yoyo_backend(target, "rollback")
            try:
                _reconcile_yoyo(backend, ledger, ymigs)
                with LockWaitWatch(target, "rollback") as watch:
                    for m in todo:
                        if progress:
                            progress("rollback", m)
                        if not m.transactional:
                            _apply_online(target, backend, ymigs[m.version], m, settings, "rollback",
                                          result.notes)
                            result.rolled_back.append(m.id)
                            continue
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


def repair(
    target: DatabaseTarget,
    migrations: list[Migration],
    settings: Settings,
    *,
    reason: str,
    versions: list[int] | None = None,
    lock_timeout_s: float = 30.0,
) -> list[MigrationState]:
    """Accept the current checksum (and settings) of drifted migrations (all of them, or
    `versions`), recording the reason, role and time in neurant_meta.ledger_history.
    Runs nothing of the migrations themselves."""
    if not reason.strip():
        raise BadArgument("--reason must say why the drifted checksum is accepted")
    by_version = {m.version: m for m in migrations}
    with migration_lock(target, lock_timeout_s), target.connect(purpose="repair") as conn:
        ledger = read_ledger(conn)
        states = explain_drift(compute_status(migrations, ledger), ledger, settings)
        drifted = {s.version: s for s in states if s.state == "drifted"}
        if not drifted:
            raise BadArgument("nothing to repair: no applied migration drifted",
                              hint="`neurant-db status` lists the state of every migration")
        if versions:
            not_drifted = [f"{v:04d}" for v in versions if v not in drifted]
            if not_drifted:
                raise BadArgument(
                    "not drifted, nothing to repair: " + ", ".join(not_drifted),
                    hint="drifted: " + ", ".join(s.id for s in drifted.values()))
            chosen = [drifted[v] for v in sorted(set(versions))]
        else:
            chosen = list(drifted.values())
        by_settings = [s for s in chosen if s.cause == "settings"]
        if by_settings:
            raise BadArgument(
                "the database was built with other render settings, not repaired: "
                + ", ".join(f"{s.id} ({s.detail})" for s in by_settings),
                hint="repair accepts an edited file; the objects of these migrations still have the "
                "recorded settings: run with them, or change the setting with a new migration")
        repair_rows(conn, [ledger_entry(by_version[s.version], settings) for s in chosen], reason.strip())
    return chosen


def baseline(
    target: DatabaseTarget,
    migrations: list[Migration],
    settings: Settings,
    *,
    version: int,
    reason: str,
    lock_timeout_s: float = 30.0,
) -> list[Migration]:
    """Adopt a database built without the runner: mark every migration <= version
    applied (kind 'baselined') without running it. Refuses a database whose ledger has rows."""
    if version not in {m.version for m in migrations}:
        raise BadArgument(f"baseline {version:04d}: no migration has that version")
    chosen = [m for m in migrations if m.version <= version]
    with migration_lock(target, lock_timeout_s), target.connect(purpose="baseline") as conn:
        if ledger_row_count(conn):
            raise BadArgument(
                "the database already has a migration ledger with rows: nothing to baseline",
                hint="baseline adopts a database the runner never migrated; see `neurant-db status`")
        baseline_rows(conn, [ledger_entry(m, settings) for m in chosen], reason.strip() or "baseline")
    return chosen


def summary(states: list[MigrationState]) -> dict[str, int]:
    """Counts of applied/pending/drifted/missing (and baselined among the applied)."""
    counts = {k: sum(1 for s in states if s.state == k) for k in ("applied", "pending", "drifted", "missing")}
    counts["baselined"] = sum(1 for s in states if s.baselined)
    return counts


class RollbackRefused(NeurantError):
    """A rollback would drop tables holding rows and was not confirmed; nothing was done."""


_DROP_TABLE = re.compile(r"\bdrop\s+table\s+(?:if\s+exists\s+)?((?:[\w.\"]+\s*,\s*)*[\w.\"]+)", re.I)
_DROP_SCHEMA_CASCADE = re.compile(r"\bdrop\s+schema\s+(?:if\s+exists\s+)?([\w\"]+)[^;]*\bcascade\b", re.I)
COUNT_CAP = 1_000_000


def _rows_text(n: int) -> str:
    return f"at least {COUNT_CAP:,} rows" if n >= COUNT_CAP else f"{n} row{'s' if n != 1 else ''}"


def tables_dropped(migrations: list[Migration]) -> list[str]:
    """Tables the rendered rollback SQL of these migrations drops (drop table, drop schema ... cascade:
    schema.*), in order, qualified as written."""
    found: list[str] = []
    for m in migrations:
        code = re.sub(r"--[^\n]*|/\*.*?\*/", " ", m.rollback_sql, flags=re.S)
        for names in _DROP_TABLE.findall(code):
            found.extend(n.strip() for n in names.split(","))
        found.extend(f"{schema}.*" for schema in _DROP_SCHEMA_CASCADE.findall(code))
    return list(dict.fromkeys(found))


def tables_with_rows(conn: psycopg.Connection, migrations: list[Migration]) -> list[tuple[str, int]]:
    """The tables these rollbacks would drop that hold rows now, with their row counts (capped)."""
    tables: list[str] = []
    for name in tables_dropped(migrations):
        if name.endswith(".*"):
            tables.extend(r[0] for r in conn.execute(
                "select format('%%I.%%I', n.nspname, c.relname) from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind in ('r', 'p') order by 1", (name[:-2].strip('"'),)))
        else:
            row = conn.execute("select format('%%I.%%I', n.nspname, c.relname) from pg_class c "
                               "join pg_namespace n on n.oid = c.relnamespace "
                               "where c.oid = to_regclass(%s)", (name,)).fetchone()
            if row and row[0]:
                tables.append(row[0])
    losing = []
    for table in dict.fromkeys(tables):
        # `select 1`, not an empty select list: Citus refuses the latter on a distributed table.
        row = conn.execute(f"select count(*) from (select 1 from {table} limit {COUNT_CAP}) t").fetchone()
        if row and row[0]:
            losing.append((table, int(row[0])))
    return losing


# --- commands that need a migrated database -------------------------------------------------

class NotMigrated(NeurantError):
    """The database lacks migrations this runner knows: the command needs the migrated schema."""


@dataclass(frozen=True)
class MigrationGap:
    """The ledger against the migrations this runner knows (by version; settings play no part)."""

    known: int
    applied: int
    pending: list[str]
    missing: list[str]  # applied, but no file of this runner has that version

    @property
    def message(self) -> str:
        if not self.pending:
            return ""
        if self.applied == 0:
            return f"the database is not migrated (none of the {self.known} migrations is applied): run migrate first"
        return (f"the database is not fully migrated ({self.applied} of {self.known} migrations applied, "
                f"{len(self.pending)} pending from {self.pending[0]}): run migrate first")


def migration_gap(conn: psycopg.Connection) -> MigrationGap | None:
    """None when this role may not read the ledger (a service's login: the ledger schema is
    the migration owner's alone), so nothing can be said."""
    readable = conn.execute(f"select has_schema_privilege(oid, 'USAGE') from pg_namespace "
                            f"where nspname = '{META_SCHEMA}'").fetchone()
    if readable == (False,):
        return None
    ledger = read_ledger(conn)
    # Profile-only migrations count for a database migrated with that profile only.
    profiles = {(row.settings or {}).get("profile") for row in ledger.values()}
    sources = [s for s in discover() if s.only_profile is None or s.only_profile in profiles
               or s.version in ledger]
    known = {s.version for s in sources}
    return MigrationGap(
        known=len(sources),
        applied=len(known & set(ledger)),
        pending=[s.id for s in sources if s.version not in ledger],
        missing=[ledger[v].name for v in sorted(ledger) if v not in known],
    )


def require_migrated(conn: psycopg.Connection) -> None:
    """One clear line instead of a missing-relation error deep inside a command."""
    gap = migration_gap(conn)
    if gap is not None and gap.pending:
        raise NotMigrated(gap.message)
