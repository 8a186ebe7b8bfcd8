"""The migration lock: a row lock in the owner-only ledger schema, on its own connection.

yoyo's lock is a table row that survives a crash. Ours is a *lock on* a row
(`select ... for update nowait` on neurant_meta.migration_lock, held by an open
transaction on a dedicated connection): it dies with the session that holds it,
so a killed run never blocks the next one; a live run makes the next one wait up
to the timeout, then fail naming the holder. Not an advisory lock: any role may
take any advisory key, so an end user could block every migration (issue 9);
neurant_meta is reachable by the migration owner only.

The lock dies with its session, but a killed run's *other* sessions may live on: the
server only notices a dead client when it next writes to it, so a long statement (a
migration's DDL, a `create index concurrently`) runs to its end with nobody to read
the answer. Whoever takes the lock next therefore first stops the sessions an earlier
run left (`stop_orphaned_runs`), and says which, before it touches anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import psycopg

from .database import DatabaseTarget, application_name, require_own_session
from .errors import LockHeld
from .ledger import META_SCHEMA

LOCK_TABLE = f"{META_SCHEMA}.migration_lock"

LOCK_TABLE_SQL = f"""
create schema if not exists {META_SCHEMA};
revoke all on schema {META_SCHEMA} from public;
create table if not exists {LOCK_TABLE} (
    id boolean primary key default true check (id)
);
comment on table {LOCK_TABLE} is
    'The migration lock: one row, locked FOR UPDATE by the running neurant-db migrate/rollback for its whole run.';
comment on column {LOCK_TABLE}.id is 'Always true: the table holds exactly one row.';
revoke all on table {LOCK_TABLE} from public;
insert into {LOCK_TABLE} (id) values (true) on conflict do nothing;
"""

TAKE_SQL = f"select id from {LOCK_TABLE} for update nowait"

# The working sessions of a migrate or rollback run (database.application_name: yoyo's, the
# no-transaction path's, the lock-wait watcher's) in this database. Whoever holds the lock
# is the only live run, so every such session belongs to a run whose client is gone. Lock
# sessions (" lock": runs waiting for the lock) and dry runs (" dry-run") are not matched.
ORPHANS_SQL = """
select a.pid, a.application_name, coalesce(a.state, ''),
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120),
       coalesce((select format(' (create index: %s, %s of %s blocks)', p.phase, p.blocks_done,
                               p.blocks_total)
                 from pg_stat_progress_create_index p where p.pid = a.pid), '')
from pg_stat_activity a
where a.datname = current_database() and a.pid <> pg_backend_pid()
  and a.application_name ~ '^neurant-db (migrate|rollback)( \\(no transaction\\)| lock-watch)?$'
order by a.pid
"""
# How long one orphan is given to exit after pg_terminate_backend (milliseconds).
ORPHAN_EXIT_MS = 10_000

HOLDER_SQL = f"""
select a.pid, coalesce(a.application_name, ''), a.usename, a.client_addr::text,
       to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ')
from {LOCK_TABLE} m
join pg_locks l on l.locktype = 'transactionid' and l.transactionid = m.xmax
                and l.mode = 'ExclusiveLock' and l.granted
join pg_stat_activity a on a.pid = l.pid
"""


def ensure_lock_table(conn: psycopg.Connection, attempts: int = 6) -> None:
    """Create the lock table and its row if missing (idempotent). Two first runs may race
    on the catalog (duplicate key, "tuple concurrently updated"): the loser retries and
    then finds the table the winner committed."""
    for attempt in range(attempts):
        if conn.execute("select to_regclass(%s) is not null", (LOCK_TABLE,)).fetchone() == (True,):
            return
        try:
            with conn.transaction():
                conn.execute(LOCK_TABLE_SQL)
            return
        except psycopg.Error:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def describe_holder(conn: psycopg.Connection) -> str:
    """Who holds the lock: every transaction holds an exclusive lock on its own xid,
    which is the xmax its FOR UPDATE left on the row."""
    row = conn.execute(HOLDER_SQL).fetchone()
    if row is None:
        return "an unknown session"
    pid, app, user, addr, started = row
    where = f" from {addr}" if addr else ""
    return f"pid {pid} ({app or 'no application_name'}, user {user}{where}, connected {started})"


def try_lock(conn: psycopg.Connection) -> bool:
    """Open a transaction on `conn` and lock the row in it; False (and no transaction
    left open) when another session holds it."""
    conn.execute("begin")
    try:
        conn.execute(TAKE_SQL)
    except psycopg.errors.LockNotAvailable:
        conn.execute("rollback")
        return False
    return True


def stop_orphaned_runs(conn: psycopg.Connection) -> list[str]:
    """End the sessions an earlier, killed run left behind (called with the lock held) and
    return one line per session saying what it was running; raise LockHeld naming any
    session that could not be ended (another role's, without the privilege to signal it)."""
    stopped: list[str] = []
    for pid, app, state, query, progress in conn.execute(ORPHANS_SQL).fetchall():
        what = f"pid {pid} ({app}, {state or 'unknown state'}: {query}){progress}"
        try:
            ended = conn.execute("select pg_terminate_backend(%s, %s)", (pid, ORPHAN_EXIT_MS)).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            ended = None
        if ended != (True,) and _alive(conn, pid):
            raise LockHeld(
                f"a session of an earlier neurant-db run whose client is gone is still running: {what}",
                hint=f"end it (select pg_terminate_backend({pid}); as its role or a superuser) and run "
                "again; its transaction rolls back, and an index it was building concurrently is "
                "left invalid, which the next run drops and builds again",
            )
        stopped.append(f"stopped {what}, left by an earlier run whose client is gone")
    return stopped


def _alive(conn: psycopg.Connection, pid: int) -> bool:
    return conn.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone() is not None


@contextmanager
def migration_lock(target: DatabaseTarget, timeout_s: float, poll_s: float = 0.25, *,
                   create: bool = True, command: str = "migrate") -> Iterator[list[str]]:
    """Hold the migration lock for the duration of the block, which receives the lines
    saying what sessions of earlier, killed runs were stopped (`stop_orphaned_runs`). With
    create=False (a dry run, which writes nothing) nothing is stopped, and a database
    without the lock table is left untouched. Before anything, a transaction pooler is
    refused: the lock is an open transaction on this session and the DDL runs on others
    (see database.require_own_session)."""
    conn = target.connect(autocommit=True, purpose=f"{command} lock")
    try:
        require_own_session(conn, target.url, command)
        # The lock is an open transaction that stays idle while the migrations run on
        # another connection: a server-wide idle timeout must not end it midway.
        conn.execute("set idle_in_transaction_session_timeout = 0")
        if not create and conn.execute("select to_regclass(%s)", (LOCK_TABLE,)).fetchone() == (None,):
            yield []
            return
        ensure_lock_table(conn)
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while not try_lock(conn):
            if time.monotonic() >= deadline:
                holder = describe_holder(conn)
                raise LockHeld(
                    f"another neurant-db run holds the migration lock: {holder}; "
                    f"waited {timeout_s:g}s",
                    hint="wait for it to finish (--lock-timeout SECONDS waits longer); the lock "
                    "is released automatically when that session ends, even if it crashed",
                )
            time.sleep(poll_s)
        if not create:
            yield []
            return
        # On a session of its own: inside the lock's transaction, the catalog and statistics
        # snapshots these reads take would be held for the whole run, and a CREATE INDEX
        # CONCURRENTLY of this very run would wait for them.
        with target.connect(autocommit=True, purpose=f"{command} lock") as side:
            stopped = stop_orphaned_runs(side)
        yield stopped
    finally:
        conn.close()  # ending the session ends its transaction, and with it the row lock


BLOCKER_SQL = """
select b.pid, coalesce(nullif(b.application_name, ''), 'no application_name'), b.usename,
       coalesce(b.state, ''),
       coalesce((select format('%%I.%%I', n.nspname, c.relname) from pg_class c
                 join pg_namespace n on n.oid = c.relnamespace where c.oid = l.relation), l.locktype),
       l.mode,
       left(regexp_replace(coalesce(b.query, ''), '\\s+', ' ', 'g'), 120)
from pg_stat_activity w
join pg_locks l on l.pid = w.pid and not l.granted
cross join lateral unnest(pg_blocking_pids(w.pid)) as bp(pid)
join pg_stat_activity b on b.pid = bp.pid
where w.datname = current_database() and w.application_name = %s and w.pid <> pg_backend_pid()
order by b.pid
limit 1
"""


class LockWaitWatch:
    """While migrations run, sample which session their backends wait for (the
    lock_timeout error names neither; by the time it arrives the wait is over).
    `blocker` is the last one seen, as a sentence naming its pid and the relation."""

    def __init__(self, target: DatabaseTarget, purpose: str, interval_s: float = 0.1) -> None:
        self.target = target
        self.watched = application_name(purpose)
        self.purpose = purpose
        self.interval_s = interval_s
        self.blocker: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self, conn: psycopg.Connection) -> None:
        with conn:
            while not self._stop.is_set():
                try:
                    row = conn.execute(BLOCKER_SQL, (self.watched,)).fetchone()
                except psycopg.Error:
                    return
                if row is not None:
                    pid, app, user, state, relation, mode, query = row
                    self.blocker = (f"it waited for {mode} on {relation}, held by pid {pid} ({app}, "
                                    f"user {user}, {state or 'unknown state'}: {query})")
                self._stop.wait(self.interval_s)

    def __enter__(self) -> LockWaitWatch:
        conn = self.target.connect(autocommit=True, purpose=f"{self.purpose} lock-watch")
        self._thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
