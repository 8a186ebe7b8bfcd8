"""Restore drill (`neurant-db restore-check`): a pgBackRest backup restored to a point in
time into a scratch cluster, and the copy proved.

1. pgBackRest is found and the stanza's repository answers (`pgbackrest info`); the source
   database is reached (the root's --database-url) and its archiving settings recorded;
2. a heartbeat is written (`neurant_meta.restore_heartbeats`: a timestamped row outside the
   tenant tables), a backup taken (`pgbackrest backup`, unless --no-backup: the latest one),
   and another heartbeat written (it exists only in the archived WAL);
3. the target: by default the drill makes its own. In one transaction it pauses the writes
   to every table of public/private/archive (LOCK ... IN SHARE MODE: readers go on, writers
   wait), counts and hashes each table, and takes the time T; then it releases the lock
   and writes a heartbeat after T (which the copy must not have). With --target-time the
   DBA names T (no source hashes: nobody knows the source at a past moment);
4. `pgbackrest check` switches the WAL and waits until it is archived; `pgbackrest restore
   --type=time --target=T --pg1-path=<scratch>/data` (archiving off, tablespaces mapped
   into the scratch folder) and the scratch cluster starts on its own unix socket (no TCP,
   its own pg_hba.conf: trust for that socket only), recovers to T and promotes;
5. the copy is proved: heartbeats up to T present and none after it, the migration ledger
   equal to the source's and without drift against the migrations, doctor without errors
   (with the schema check built in a scratch database of the scratch cluster), RLS enabled
   and forced on every table, a sample of the isolation matrix (the test fixtures and the
   probe loaded in a transaction that is rolled back), and the row count and hash of every
   table equal to the source's at T; then, last (it changes rows), the erasures requested in
   the source after T are carried out again on the copy (check `erasures`, erasure.py:
   replayed / already in the copy / matched nobody), as they must be before a restored copy
   goes live;
6. RPO (T minus the newest heartbeat in the copy; archive_timeout as the bound) and RTO
   (restore + start + recovery + checks, wall clock) are measured; the evidence is one JSON
   document. The scratch cluster is stopped and deleted (unless kept).

Nothing here prints a password: the source is shown redacted, pgBackRest options whose
name says they hold a secret are masked wherever they are recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import random
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .database import DatabaseTarget, Source, connect
from .doctor import run_checks
from .erasure import ReplayError, ledger_entries, replay_entries, summarize
from .errors import BadArgument, NeurantError
from .isolation import EXPOSED_SCHEMAS, SpecError, TableSpec, cells, load_spec, target_predicate
from .ledger import META_SCHEMA, read_ledger
from .migrate import compute_status, explain_drift
from .paths import sql_root
from .render import render_all
from .schema_diff import applied, check_schema
from .settings import Settings

HEARTBEATS = f"{META_SCHEMA}.restore_heartbeats"
HASHED_SCHEMAS = ("public", "private", "archive")
SECRET_OPTION = re.compile(r"(pass|key|secret|token|credential)", re.I)
# The settings every session of the drill uses, on the source and on the copy alike, so that
# a row's text (what is hashed) is the same on both sides.
SESSION_SETTINGS = ("set timezone = 'UTC'", "set datestyle = 'ISO, MDY'", "set intervalstyle = 'postgres'",
                    "set extra_float_digits = 1", "set bytea_output = 'hex'", "set row_security = off")
HEARTBEAT_SQL = f"""
create table if not exists {HEARTBEATS} (
    id bigint generated always as identity primary key,
    written_at timestamptz not null default clock_timestamp(),
    drill text not null,
    step text not null
);
comment on table {HEARTBEATS} is
    'Heartbeats of neurant-db restore-check: rows the restore drill writes on the source and looks for in '
    'the restored copy (RPO). Not tenant data; safe to truncate.';
comment on column {HEARTBEATS}.id is 'Order of the heartbeats.';
comment on column {HEARTBEATS}.written_at is 'When the heartbeat was written (clock_timestamp()).';
comment on column {HEARTBEATS}.drill is 'The drill that wrote it (its start, UTC).';
comment on column {HEARTBEATS}.step is 'before-backup, after-backup or after-target.';
"""

Progress = Callable[[str], None]


class DrillUnavailable(NeurantError):
    """The drill cannot run: pgBackRest, its repository, PostgreSQL's binaries or the scratch
    location is missing or unusable."""

    exit_code = 2


class DrillFailed(NeurantError):
    """A step of the drill failed (backup, restore, the scratch cluster's start)."""


@dataclass
class DrillOptions:
    stanza: str
    pgbackrest_config: Path | None = None
    pgbackrest_bin: str = "pgbackrest"
    pgbackrest_options: dict[str, str] = field(default_factory=dict)
    backup: bool = True
    backup_type: str = "full"
    target_time: datetime | None = None
    scratch_dir: Path | None = None
    scratch_port: int | None = None
    scratch_settings: dict[str, str] = field(default_factory=dict)
    keep_scratch: bool = False
    pg_bindir: Path | None = None
    os_user: str | None = None
    isolation_sample: int = 200
    seed: int | None = None  # None: a new sample every drill (the seed is in the evidence)
    schema_check: bool = True
    lock_timeout_s: int = 30
    start_timeout_s: int = 3600
    max_rpo_s: int = 900


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: Any = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "ok": self.ok, "detail": self.detail}
        if self.data is not None:
            out["data"] = self.data
        return out


@dataclass
class DrillReport:
    drill: str
    source: str
    stanza: str
    checks: list[Check] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    rpo: dict[str, Any] = field(default_factory=dict)
    rto_seconds: float | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"drill": self.drill, "ok": self.ok, "error": self.error, "source": self.source,
                "stanza": self.stanza, "rpo": self.rpo, "rto_seconds": self.rto_seconds,
                "timings": {k: round(v, 3) for k, v in self.timings.items()}, "steps": self.steps,
                "checks": [c.as_dict() for c in self.checks], "tables": self.tables}


@dataclass(frozen=True)
class DrillHooks:
    """For tests: change the copy before it is checked (a tampered restore), or the target
    the restore is given (a wrong target)."""

    before_checks: Callable[[str], None] | None = None
    restore_target: Callable[[datetime], datetime] | None = None


# --- processes -------------------------------------------------------------------


def _run_as(user: str | None, args: Sequence[str | Path], *, timeout: float, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                              user=user, cwd=cwd, check=False)
    except FileNotFoundError as exc:
        raise DrillUnavailable(f"{args[0]} cannot be run: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise DrillFailed(f"{Path(str(args[0])).name} {_shown_args(args[1:])[:200]} did not finish "
                          f"within {timeout:.0f}s") from None


def _shown_args(args: Sequence[str | Path]) -> str:
    """A command line as it may be recorded: option values that hold a secret masked."""
    shown = []
    for arg in map(str, args):
        name, eq, _value = arg.partition("=")
        shown.append(f"{name}=***" if eq and SECRET_OPTION.search(name) else arg)
    return " ".join(shlex.quote(a) for a in shown)


def _last_lines(text: str, n: int = 12) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-n:])


def _os_user(options: DrillOptions) -> str | None:
    """Who runs pgBackRest and the scratch server: --os-user (root only), else postgres
    when run as root (PostgreSQL refuses root), else whoever runs the drill (None)."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    if options.os_user and options.os_user != me and os.geteuid() != 0:
        raise BadArgument(f"--os-user {options.os_user}: only root may run the drill's commands as another user",
                          hint=f"run the drill as {options.os_user} itself (sudo -u {options.os_user} neurant-db ...)")
    user = options.os_user or ("postgres" if os.geteuid() == 0 else None)
    if user is not None and user != me:
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise BadArgument(f"--os-user {user}: no such system user",
                              hint="name the user that owns the pgBackRest repository and runs PostgreSQL") from None
        return user
    return None


class PgBackRest:
    """pgbackrest run as the drill's system user, with the drill's config, stanza and options."""

    def __init__(self, options: DrillOptions, user: str | None) -> None:
        found = shutil.which(options.pgbackrest_bin)
        if found is None:
            raise DrillUnavailable(f"pgBackRest is not installed: {options.pgbackrest_bin} is not on PATH",
                                   hint="install it (Debian: apt-get install pgbackrest) or name it with --pgbackrest")
        if options.pgbackrest_config is not None and not options.pgbackrest_config.is_file():
            raise DrillUnavailable(f"--pgbackrest-config {options.pgbackrest_config}: no such file")
        self.bin, self.user, self.options = found, user, options
        self.base = [f"--stanza={options.stanza}"]
        if options.pgbackrest_config is not None:
            self.base.insert(0, f"--config={options.pgbackrest_config.resolve()}")
        self.base += [f"--{k}={v}" for k, v in options.pgbackrest_options.items()]
        self.commands: list[str] = []

    def run(self, command: str, *args: str, timeout: float = 3600, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        line = [self.bin, *self.base, *args, command]
        self.commands.append("pgbackrest " + _shown_args(line[1:]))
        done = _run_as(self.user, line, timeout=timeout, cwd=Path("/"))
        if check and done.returncode != 0:
            raise DrillFailed(f"pgbackrest {command} failed (exit {done.returncode}): "
                              f"{_last_lines(done.stderr + done.stdout, 6) or 'no output'}")
        return done

    def info(self) -> dict[str, Any]:
        """The stanza's `pgbackrest info`; DrillUnavailable when the repository or stanza is missing."""
        done = self.run("info", "--output=json", timeout=300, check=False)
        try:
            stanzas = json.loads(done.stdout) if done.returncode == 0 else None
        except json.JSONDecodeError:
            stanzas = None
        if not stanzas:
            raise DrillUnavailable(f"pgbackrest info failed for stanza {self.options.stanza}: "
                                   f"{_last_lines(done.stderr + done.stdout, 4) or 'no output'}",
                                   hint="check --pgbackrest-config and --stanza (pgbackrest info)")
        stanza: dict[str, Any] = stanzas[0]
        code = stanza.get("status", {}).get("code")
        message = stanza.get("status", {}).get("message", "")
        if code not in (0, 2):  # 2: no valid backups (a first backup will be taken)
            raise DrillUnavailable(
                f"pgBackRest stanza {self.options.stanza}: {message} (status {code})",
                hint="create it with `pgbackrest --stanza=NAME stanza-create` and check the repository path "
                "(repo1-path) in the configuration")
        if code == 2 and not self.options.backup:
            raise DrillUnavailable(f"pgBackRest stanza {self.options.stanza} has no backup to restore (--no-backup)",
                                   hint="run without --no-backup to take one")
        return stanza


# --- the source ------------------------------------------------------------------


def _prepare(conn: psycopg.Connection) -> None:
    for statement in SESSION_SETTINGS:
        conn.execute(statement)


def _tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "select quote_ident(n.nspname) || '.' || quote_ident(c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s) and c.relkind in ('r', 'p') and not c.relispartition order by 1",
        (list(HASHED_SCHEMAS),)).fetchall()
    return [r[0] for r in rows]


def table_hash(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    """(rows, hash) of a table: an order-independent hash of its rows' text (the exact sums
    of two 64-bit halves of each row's md5), computed by the server."""
    row = conn.execute(sql.SQL(
        "select count(*), coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text,"
        " coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text"
        " from (select md5(t::text) as h from {} t) s").format(sql.SQL(table))).fetchone()
    assert row is not None
    count, first, second = int(row[0]), row[1], row[2]
    return count, hashlib.sha256(f"{count}:{first}:{second}".encode()).hexdigest()[:32]


def hash_tables(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    return {t: table_hash(conn, t) for t in _tables(conn)}


def write_heartbeat(conn: psycopg.Connection, drill: str, step: str) -> datetime:
    row = conn.execute(f"insert into {HEARTBEATS} (drill, step) values (%s, %s) returning written_at",
                       (drill, step)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _heartbeats(conn: psycopg.Connection) -> list[tuple[int, datetime, str, str]]:
    if conn.execute("select to_regclass(%s) is null", (HEARTBEATS,)).fetchone() == (True,):
        return []
    rows = conn.execute(f"select id, written_at, drill, step from {HEARTBEATS} order by id").fetchall()
    return [(int(r[0]), r[1], str(r[2]), str(r[3])) for r in rows]


def pause_and_hash(conn: psycopg.Connection, lock_timeout_s: int) -> tuple[datetime, dict[str, tuple[int, str]], float]:
    """Writes paused (SHARE locks on every hashed table), every table hashed, the time taken:
    (T, hashes, seconds the writers waited). Nothing written to those tables can commit
    between the hashes and T, so the copy recovered to T must equal them."""
    started = time.monotonic()
    with conn.transaction():
        conn.execute(f"set local lock_timeout = '{int(lock_timeout_s)}s'")
        tables = _tables(conn)
        try:
            conn.execute(sql.SQL("lock table {} in share mode").format(sql.SQL(", ").join(map(sql.SQL, tables))))
        except psycopg.errors.LockNotAvailable:
            raise DrillFailed(f"could not pause the writes within {lock_timeout_s}s (a long transaction holds "
                              "a table)", hint="run the drill again, or raise --lock-timeout") from None
        hashes = {t: table_hash(conn, t) for t in tables}
        row = conn.execute("select clock_timestamp()").fetchone()
        assert row is not None
        target: datetime = row[0]
    return target, hashes, time.monotonic() - started


# --- the scratch cluster ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _bindir(options: DrillOptions, major: int) -> Path:
    candidates = [options.pg_bindir] if options.pg_bindir else [Path(f"/usr/lib/postgresql/{major}/bin")]
    if not options.pg_bindir and shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(done.stdout.strip()))
    for path in candidates:
        if path and (path / "pg_ctl").is_file():
            return path
    raise DrillUnavailable(f"PostgreSQL {major}'s pg_ctl was not found (looked in "
                           f"{', '.join(str(c) for c in candidates if c)})",
                           hint=f"install the server the backup was taken with (Debian: postgresql-{major}) "
                           "or name its bin folder with --pg-bindir")


@dataclass
class Scratch:
    root: Path
    created: bool
    port: int
    user: str | None
    bindir: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgresql.log"

    def url(self, database: str, user: str) -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.root), port=str(self.port), dbname=database, user=user)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").is_file()

    def log_tail(self) -> str:
        return _last_lines(self.log.read_text(errors="replace"), 8) if self.log.is_file() else ""


@contextmanager
def scratch_location(options: DrillOptions, user: str | None, bindir: Path) -> Iterator[Scratch]:
    """The scratch folder (given empty, or a new temporary one), its server stopped and the
    folder removed afterwards (unless kept)."""
    given = options.scratch_dir
    if given is not None:
        given = given.resolve()
        if given.exists() and (not given.is_dir() or any(given.iterdir())):
            raise DrillUnavailable(f"--scratch-dir {given} is not an empty folder",
                                   hint="name a new or empty folder: the drill restores into it")
        created = not given.exists()
        given.mkdir(parents=True, exist_ok=True)
        root = given
    else:
        root, created = Path(tempfile.mkdtemp(prefix="neurant-restore-")), True
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o700)
    scratch = Scratch(root, created, options.scratch_port or _free_port(), user, bindir)
    try:
        yield scratch
    finally:
        if scratch.running():
            stopped = _run_as(user, [bindir / "pg_ctl", "-D", scratch.data, "-m", "fast", "-w", "-t", "60", "stop"],
                              timeout=120)
            if stopped.returncode != 0:
                _run_as(user, [bindir / "pg_ctl", "-D", scratch.data, "-m", "immediate", "-w", "stop"], timeout=60)
        if not options.keep_scratch:
            if created:
                shutil.rmtree(root, ignore_errors=True)
            else:
                for child in root.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)


def start_scratch(scratch: Scratch, options: DrillOptions, superuser: str) -> None:
    """Start the restored cluster on its own socket only, with its own pg_hba.conf, no archiving
    and no preloaded libraries (no pg_cron job runs on the copy), then wait for its promotion."""
    hba = scratch.root / "pg_hba.conf"
    hba.write_text("# neurant-db restore-check: the scratch cluster's own socket only\nlocal all all trust\n",
                   encoding="utf-8")
    if scratch.user is not None:
        os.chown(hba, pwd.getpwnam(scratch.user).pw_uid, -1)
    settings = {"port": str(scratch.port), "listen_addresses": "", "unix_socket_directories": str(scratch.root),
                "hba_file": str(hba), "archive_mode": "off", "shared_preload_libraries": "",
                "external_pid_file": "", "hot_standby": "on", **options.scratch_settings}
    flags = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in settings.items())
    done = _run_as(scratch.user, [scratch.bindir / "pg_ctl", "-D", scratch.data, "-l", scratch.log, "-w",
                                  "-t", str(options.start_timeout_s), "-o", flags, "start"],
                   timeout=options.start_timeout_s + 30)
    if done.returncode != 0:
        raise DrillFailed(f"the restored cluster did not start: {_last_lines(done.stderr + done.stdout, 3)}\n"
                          f"{scratch.log_tail()}")
    deadline = time.monotonic() + options.start_timeout_s
    while time.monotonic() < deadline:
        if not scratch.running():
            raise DrillFailed(f"the restored cluster stopped during recovery:\n{scratch.log_tail()}")
        with suppress(psycopg.Error, NeurantError), connect(scratch.url("postgres", superuser),
                                                          purpose="restore-check") as conn:
            if conn.execute("select pg_is_in_recovery()").fetchone() == (False,):
                return
        time.sleep(0.25)
    raise DrillFailed(f"the restored cluster did not finish recovery within {options.start_timeout_s}s")


def _recovery_lines(scratch: Scratch) -> list[str]:
    text = scratch.log.read_text(errors="replace") if scratch.log.is_file() else ""
    return [line.split("LOG:", 1)[-1].strip() for line in text.splitlines()
            if "recovery stopping" in line or "last completed transaction" in line
            or "starting point-in-time recovery" in line]


# --- the checks on the copy ------------------------------------------------------


def check_heartbeats(copy: psycopg.Connection, source_beats: list[tuple[int, datetime, str, str]],
                     target: datetime, drill: str) -> tuple[Check, datetime | None]:
    found = {b[0]: b for b in _heartbeats(copy)}
    # the commit follows the insert by a moment: a heartbeat written within a second before
    # a target the DBA named may or may not have committed before it
    margin = 0.0 if any(b[2] == drill and b[3] == "after-target" for b in source_beats) else 1.0
    expected = [b for b in source_beats if (target - b[1]).total_seconds() > margin]
    after = [b for b in source_beats if b[1] > target]
    missing = [b for b in expected if b[0] not in found]
    extra = [b for b in after if b[0] in found]
    newest = max((b[1] for b in found.values() if b[1] <= target), default=None)
    ok = not missing and not extra and (newest is not None or not expected)
    parts = [f"{len(expected) - len(missing)}/{len(expected)} heartbeats written before the target found"]
    if extra:
        parts.append(f"{len(extra)} written after the target found too (the restore went past it)")
    if newest is None:
        parts.append("no heartbeat in the copy" + ("" if expected else " (none was written before the target)"))
    data = {"expected": [b[0] for b in expected], "missing": [b[0] for b in missing],
            "after_target": [b[0] for b in after], "found_after_target": [b[0] for b in extra],
            "newest_in_copy": newest.isoformat() if newest else None}
    return Check("heartbeats", ok, "; ".join(parts), data), newest


def check_ledger(copy: psycopg.Connection, source_ledger: dict[int, Any], fallback: Settings, *,
                 exact: bool) -> Check:
    """The copy's ledger against the source's (`exact`: the same rows; else, at a target the DBA
    named, every row of the copy as the source has it: a migration may have come since) and
    against the migrations rendered with the settings it records (no drift)."""
    ledger = read_ledger(copy)
    versions = set(ledger) | set(source_ledger) if exact else set(ledger)
    differ = sorted(v for v in versions
                    if (ledger.get(v) and ledger[v].checksum) != (source_ledger.get(v) and source_ledger[v].checksum))
    done = applied(copy, fallback)
    states = explain_drift(compute_status(render_all(done.settings), ledger), ledger, done.settings)
    bad = [s for s in states if s.state in ("drifted", "missing")]
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    ok = bool(ledger) and not differ and not bad
    detail = (f"{len(ledger)} applied migrations, checksums equal to the source's and to the migrations"
              if ok else
              "; ".join(filter(None, [
                  "no migration ledger in the copy" if not ledger else "",
                  f"ledger differs from the source at {', '.join(map(str, differ))}" if differ else "",
                  f"{len(bad)} migrations drifted or missing: {', '.join(s.id for s in bad[:5])}" if bad else ""])))
    return Check("migrations", ok, detail, {"states": counts, "differ_from_source": differ})


def check_doctor(scratch_target: DatabaseTarget, copy: psycopg.Connection, fallback: Settings,
                 schema: bool) -> Check:
    settings = applied(copy, fallback).settings
    findings = run_checks(copy, settings.profile)
    if schema:
        findings += check_schema(scratch_target, fallback)
    errors = [f for f in findings if f.level == "error"]
    warnings = [f for f in findings if f.level == "warning"]
    detail = (f"{len(errors)} error(s), {len(warnings)} warning(s)"
              + ("" if schema else " (schema check skipped)")
              + (": " + "; ".join(f"{f.check} {f.object}" for f in errors[:5]) if errors else ""))
    return Check("doctor", not errors, detail, [f.as_dict() for f in errors + warnings])


def check_rls(copy: psycopg.Connection) -> Check:
    rows = copy.execute(
        "select n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p') and n.nspname = any(%s)"
        " order by 1", (list(EXPOSED_SCHEMAS),)).fetchall()
    bad = [r[0] for r in rows if not (r[1] and r[2])]
    return Check("rls", bool(rows) and not bad,
                 f"row level security enabled and forced on all {len(rows)} tables" if rows and not bad
                 else f"not enabled and forced on: {', '.join(bad) or 'no table found'}", {"tables": len(rows),
                                                                                          "not_forced": bad})


def _sample_cells(specs: dict[str, TableSpec], tables: set[str], n: int, seed: int
                  ) -> list[tuple[TableSpec, str, str, str, str]]:
    """Every table once (a member of company A reading company B's rows, or the first cell of a
    global table), then cells drawn at random (seeded) up to n. Not the deletes of a global
    table's rows: their targets are the rows no company of the fixtures uses (a plan), and on
    a copy of real data some company may well use them (23503 by design), which says nothing
    about tenant isolation; the test suite proves those cells on the fixtures alone."""
    everything = [(spec, *cell) for name, spec in sorted(specs.items()) if name in tables for cell in cells(spec)
                  if not (spec.is_global and cell[1] == "delete")]
    chosen: list[tuple[TableSpec, str, str, str, str]] = []
    for name, spec in sorted(specs.items()):
        if name not in tables:
            continue
        own = [c for c in everything if c[0] is spec]
        cross = (c for c in own if c[1] == "owner" and c[2] == "select" and c[3] == "other")
        pick = next(cross, own[0] if own else None)
        if pick:
            chosen.append(pick)
    rest = [c for c in everything if c not in chosen]
    random.Random(seed).shuffle(rest)
    return chosen + rest[:max(0, n - len(chosen))]


def check_isolation(copy: psycopg.Connection, sample: int, seed: int) -> Check:
    """A sample of the isolation matrix on the copy: the test fixtures (companies A and B, one
    member per role) and the probe loaded in one transaction that is rolled back."""
    if sample <= 0:
        return Check("isolation", True, "not sampled (--isolation-sample 0)")
    try:
        specs = load_spec(sql_root() / "tests" / "isolation" / "access_spec.toml")
    except (SpecError, OSError, tomllib.TOMLDecodeError) as exc:
        return Check("isolation", False, f"the access spec cannot be read: {exc}")
    profiles = {str((row.settings or {}).get("profile")) for row in read_ledger(copy).values()}
    specs = {k: v.for_profiles(profiles) for k, v in specs.items()}
    tables = {r[0] for r in copy.execute(
        "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and n.nspname = any(%s) and not c.relispartition",
        (list(EXPOSED_SCHEMAS),)).fetchall()}
    undeclared = sorted(tables - set(specs))
    chosen = _sample_cells(specs, tables, sample, seed)
    results: list[dict[str, str]] = []
    failed: list[str] = []
    skipped = 0
    try:
        with copy.transaction():
            copy.execute("set local search_path = public, extensions")
            copy.execute("set local row_security = on")
            for path in sorted((sql_root() / "tests" / "fixtures").glob("*.sql")):
                copy.execute(path.read_bytes())
            for spec, identity, command, target, expected in chosen:
                predicate = target_predicate(spec, target, identity)
                row = copy.execute(
                    "select tests.probe(%s, %s, %s::regclass, %s, %s, %s::jsonb)",
                    (identity, command, spec.name, predicate, spec.update_set,
                     json.dumps(spec.insert_overrides))).fetchone()
                got = str(row[0]) if row else "n/a"
                if got == "n/a":
                    skipped += 1
                    continue
                ok = got == expected or (expected == "deny" and got in ("deny: rls", "deny: grant"))
                if not ok and expected.startswith("deny: rule ") and got.startswith("deny: rule "):
                    match = copy.execute("select %s ~ %s", (got[11:], expected[11:])).fetchone()
                    ok = bool(match and match[0])
                cell = f"{identity} {command} {target} of {spec.name}"
                results.append({"cell": cell, "expected": expected, "got": got})
                if not ok:
                    failed.append(f"{cell}: expected {expected}, got {got}")
            raise psycopg.Rollback()
    except psycopg.Error as exc:
        return Check("isolation", False, f"the probe could not run on the copy: "
                     f"{(exc.diag.message_primary or str(exc)).strip()}")
    ok = not failed and not undeclared and bool(results)
    detail = (f"{len(results)} cells as the access spec says ({skipped} skipped: no target row)" if ok else
              "; ".join(filter(None, [f"{len(failed)} of {len(results)} cells wrong: {'; '.join(failed[:3])}"
                                      if failed else "", f"tables not in the access spec: {', '.join(undeclared)}"
                                      if undeclared else "", "" if results else "no cell ran"])))
    return Check("isolation", ok, detail, {"cells": len(results), "skipped": skipped, "failed": failed,
                                           "seed": seed})


def check_tables(copy: psycopg.Connection, source: dict[str, tuple[int, str]] | None
                 ) -> tuple[Check, list[dict[str, Any]]]:
    restored = hash_tables(copy)
    if source is None:
        rows = [{"table": t, "rows_copy": n, "hash_copy": h} for t, (n, h) in sorted(restored.items())]
        return Check("tables", True, f"{len(restored)} tables counted in the copy; not compared: the source "
                     "was not hashed at a target the DBA named (--target-time)"), rows
    rows, bad = [], []
    for table in sorted(set(source) | set(restored)):
        before, after = source.get(table), restored.get(table)
        same = before == after
        rows.append({"table": table, "rows_source": before[0] if before else None,
                     "rows_copy": after[0] if after else None, "hash_source": before[1] if before else None,
                     "hash_copy": after[1] if after else None, "ok": same})
        if not same:
            where = "" if before and after else " (missing in the copy)" if before else " (only in the copy)"
            bad.append(table + where)
    total = sum(n for n, _ in source.values())
    return Check("tables", not bad,
                 f"{len(source)} tables, {total} rows: counts and hashes equal to the source at the target"
                 if not bad else f"{len(bad)} tables differ from the source at the target: {', '.join(bad[:6])}",
                 {"differ": bad}), rows


# --- the drill ---------------------------------------------------------------------


def check_erasures(copy: psycopg.Connection, source: DatabaseTarget) -> Check:
    """The erasures requested in the source after T (its ledger now, which the copy's
    predates), carried out again on the copy (erasure.replay_entries: by subject hash,
    legal holds defer). Database part only: the copy's private.cold_exports name the
    source's own files, which a drill must not rewrite (the source's `erase` did, or defers
    them under its holds); those rows keep cold_files null, for `erase --pending` on a copy
    that is promoted. One transaction: a failure leaves the copy as restored."""
    try:
        with connect(source.url, purpose="restore-check") as conn:
            _prepare(conn)
            entries = ledger_entries(conn)
        with copy.transaction():
            summary = summarize(replay_entries(copy, entries))
    except ReplayError as exc:  # a copy older than the replay itself: the runbook migrates it first
        return Check("erasures", True, f"not replayed: {exc.message} ({len(entries)} requests in the source's "
                     "ledger; migrate the copy, then neurant-db erase --replay-from)", {"skipped": exc.message})
    except psycopg.Error as exc:
        return Check("erasures", False, f"the erasures could not be replayed: "
                     f"{source.scrub((exc.diag.message_primary or str(exc)).strip())}")
    detail = (f"{summary['entries']} requests in the source's ledger: {summary['replayed']} replayed "
              f"({summary['deferred']} deferred by a legal hold), {summary['already_present']} already in the copy, "
              f"{summary['matched_nobody']} matched nobody, {summary['company_absent']} of a company not in the copy")
    return Check("erasures", True, detail, {k: v for k, v in summary.items() if k != "outcomes"}
                 | {"replayed_requests": [o["request"] for o in summary["outcomes"] if o["outcome"] == "replayed"]})


def _utc(ts: datetime) -> str:
    """A recovery target PostgreSQL and pgBackRest both read: UTC with microseconds."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


def run_drill(source: DatabaseTarget, options: DrillOptions, fallback: Settings, *,
              progress: Progress | None = None, hooks: DrillHooks | None = None) -> DrillReport:
    say = progress or (lambda _text: None)
    hooks = hooks or DrillHooks()
    started_at = datetime.now(UTC)
    drill = started_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    report = DrillReport(drill, source.redacted, options.stanza)
    user = _os_user(options)
    backrest = PgBackRest(options, user)
    try:
        _drill(source, options, fallback, report, backrest, user, say, hooks)
    except (NeurantError, psycopg.Error) as exc:
        message = exc.message if isinstance(exc, NeurantError) else (exc.diag.message_primary or str(exc)).strip()
        report.error = source.scrub(message)
        exc.report = report  # type: ignore[union-attr]  # the evidence so far, for --out
        raise
    finally:
        report.steps["pgbackrest_commands"] = backrest.commands
    return report


def _drill(source: DatabaseTarget, options: DrillOptions, fallback: Settings, report: DrillReport,
           backrest: PgBackRest, user: str | None, say: Progress, hooks: DrillHooks) -> None:
    timings = report.timings
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1 << 31)
    stanza = backrest.info()
    with connect(source.url, purpose="restore-check") as conn:
        _prepare(conn)
        row = conn.execute(
            "select current_setting('server_version_num')::int / 10000, (select rolname from pg_roles where oid = 10),"
            " current_setting('archive_mode'), (select setting from pg_settings where name = 'archive_command'),"
            " (select setting::int from pg_settings where name = 'archive_timeout'), a.last_archived_wal,"
            " a.last_archived_time, a.last_failed_wal, a.last_failed_time, clock_timestamp(), current_database()"
            " from pg_stat_archiver a").fetchone()
        assert row is not None
        major, superuser, mode, command, timeout, last_wal, last_time, failed_wal, failed_time, now, database = row
        report.steps["source"] = {"server_major": major, "database": database}
        visible = command is not None  # hidden from a role without pg_read_all_settings
        archiving_ok = mode in ("on", "always") and (not visible or bool(command.strip()))
        pushes = visible and "pgbackrest" in command and options.stanza in command
        failing = failed_time is not None and (last_time is None or failed_time > last_time)
        bounded = 0 < timeout < options.max_rpo_s
        report.rpo.update({
            "archive_mode": mode, "archive_timeout_seconds": timeout, "max_rpo_seconds": options.max_rpo_s,
            "last_archived_wal": last_wal, "last_archived_age_seconds":
                round((now - last_time).total_seconds(), 1) if last_time else None,
            "archiver_failing": failing, "last_failed_wal": failed_wal if failing else None})
        report.checks.append(Check(
            "archiving", archiving_ok and not failing and bounded,
            "; ".join(filter(None, [
                f"archive_mode = {mode}" + ("" if mode in ("on", "always") else " (no WAL is archived)"),
                "archive_command not visible to this role (pg_read_all_settings)" if not visible else
                "archive_command is empty" if not command.strip() else "" if pushes else
                f"archive_command does not name pgbackrest and stanza {options.stanza} (a wrapper?): "
                "pgbackrest check proves the archive below",
                f"archive_timeout = {timeout}s" + ("" if bounded else
                                                     f" (must be above 0 and below {options.max_rpo_s}s for that RPO)"),
                f"the archiver is failing since {failed_time} ({failed_wal})" if failing else ""]))))
        source_ledger = read_ledger(conn)
        if conn.execute("select to_regclass(%s) is null", (HEARTBEATS,)).fetchone() == (True,):
            with conn.transaction():
                conn.execute(HEARTBEAT_SQL)
        write_heartbeat(conn, report.drill, "before-backup")
    bindir = _bindir(options, int(major))
    if options.backup:
        say(f"backup ({options.backup_type}) of stanza {options.stanza}")
        t0 = time.monotonic()
        backrest.run("backup", f"--type={options.backup_type}")
        timings["backup"] = time.monotonic() - t0
        stanza = backrest.info()
    backups = stanza.get("backup") or []
    report.steps["backup"] = {"taken": options.backup, "latest": backups[-1].get("label") if backups else None,
                              "backups_in_repository": len(backups)}
    with connect(source.url, purpose="restore-check") as conn:
        _prepare(conn)
        write_heartbeat(conn, report.drill, "after-backup")
        hashes: dict[str, tuple[int, str]] | None = None
        if options.target_time is None:
            say("writes paused: hashing every table of the source at the target")
            target, hashes, paused = pause_and_hash(conn, options.lock_timeout_s)
            timings["source_writes_paused"] = paused
            write_heartbeat(conn, report.drill, "after-target")
        else:
            target = options.target_time
            row = conn.execute("select clock_timestamp()").fetchone()
            if row is None or target > row[0]:
                raise BadArgument(f"--target-time {_utc(target)} is in the future of the source's clock")
        source_beats = _heartbeats(conn)
    say("waiting for the WAL to be archived (pgbackrest check)")
    t0 = time.monotonic()
    backrest.run("check", timeout=900)
    timings["archive_wait"] = time.monotonic() - t0
    restore_target = hooks.restore_target(target) if hooks.restore_target else target
    report.steps["target"] = {"time": _utc(target), "restored_to": _utc(restore_target),
                              "chosen_by": "the drill (writes paused, tables hashed)" if hashes is not None
                              else "--target-time"}
    rto_started = time.monotonic()
    with scratch_location(options, user, bindir) as scratch:
        report.steps["scratch"] = {"dir": str(scratch.root), "port": scratch.port, "kept": options.keep_scratch}
        say(f"restore to {_utc(restore_target)} into {scratch.data}")
        t0 = time.monotonic()
        # the drill's own target follows the latest backup, but pgBackRest's record of that backup's
        # stop time (whole seconds, after its last WAL was archived) may not precede it: name the set
        latest = report.steps["backup"]["latest"]
        chosen = [f"--set={latest}"] if hashes is not None and latest else []
        try:
            backrest.run("restore", f"--pg1-path={scratch.data}", *chosen, "--type=time",
                         f"--target={_utc(restore_target)}", "--target-action=promote", "--archive-mode=off",
                         f"--tablespace-map-all={scratch.root / 'tablespaces'}")
        except DrillFailed as exc:
            if "unable to find backup set" not in exc.message:
                raise
            raise DrillFailed(exc.message, hint="no backup in the repository ended before the target: a point "
                              "in time can only be restored from a backup that ended earlier") from None
        timings["restore"] = time.monotonic() - t0
        say(f"start and recovery (socket {scratch.root}, port {scratch.port})")
        t0 = time.monotonic()
        start_scratch(scratch, options, superuser)
        timings["start_and_recovery"] = time.monotonic() - t0
        report.steps["recovery"] = _recovery_lines(scratch)
        url = scratch.url(database, superuser)
        if hooks.before_checks:
            hooks.before_checks(url)
        say("checks on the copy")
        t0 = time.monotonic()
        with connect(url, purpose="restore-check") as copy:
            _prepare(copy)
            beats, newest = check_heartbeats(copy, source_beats, target, report.drill)
            report.checks.append(beats)
            tables, rows = check_tables(copy, hashes)
            report.checks.append(tables)
            report.tables = rows
            report.checks.append(check_ledger(copy, source_ledger, fallback, exact=hashes is not None))
            report.checks.append(check_rls(copy))
            copy.execute("reset row_security")
            report.checks.append(check_isolation(copy, options.isolation_sample, seed))
            report.checks.append(check_doctor(DatabaseTarget(url, Source.THROWAWAY_SERVER), copy, fallback,
                                              options.schema_check))
            # last: the checks above prove the copy as restored (the tables' hashes are the
            # source's at T); the replay then changes rows, as it would on a promoted copy
            report.checks.append(check_erasures(copy, source))
        timings["checks"] = time.monotonic() - t0
        report.rto_seconds = round(time.monotonic() - rto_started, 3)
        gap = (target - newest).total_seconds() if newest is not None else None
        report.rpo["heartbeat_gap_seconds"] = round(gap, 3) if gap is not None else None
        report.rpo["newest_heartbeat_in_copy"] = newest.isoformat() if newest else None
        report.rpo["target"] = _utc(target)
    timings["total"] = time.monotonic() - rto_started + sum(
        timings.get(k, 0.0) for k in ("backup", "archive_wait"))


def write_evidence(report: DrillReport, path: Path) -> None:
    path.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")


def print_report(report: DrillReport, echo: Callable[[str], None]) -> None:
    for c in report.checks:
        echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<11} {c.detail}")
    gap = report.rpo.get("heartbeat_gap_seconds")
    echo(f"RPO: {gap if gap is not None else '?'}s between the target and the newest heartbeat in the copy; "
         f"archive_timeout {report.rpo.get('archive_timeout_seconds')}s bounds it on a failure")
    if report.rto_seconds is not None:
        parts = ", ".join(f"{k} {report.timings[k]:.1f}s" for k in ("restore", "start_and_recovery", "checks")
                          if k in report.timings)
        echo(f"RTO: {report.rto_seconds:.1f}s ({parts})")
    echo("restore drill passed" if report.ok else "RESTORE DRILL FAILED")
