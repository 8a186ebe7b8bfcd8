"""The migration lock: a session-level advisory lock on its own connection.

yoyo's lock is a table row that survives a crash. An advisory lock dies with
the session that holds it, so a killed run never blocks the next one; a live
run makes the next one wait up to the timeout, then fail naming the holder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from .database import DatabaseTarget
from .errors import LockHeld

# Two int4 keys: 'NEUR' and 1 (migrations). Visible in pg_locks as classid/objid.
LOCK_KEY = (0x4E455552, 1)


def describe_holder(conn: psycopg.Connection) -> str:
    row = conn.execute(
        """
        select a.pid, coalesce(a.application_name, ''), a.usename, a.client_addr::text,
               to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ')
        from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.classid = %s and l.objid = %s
          and l.objsubid = 2 and l.granted
        """,
        LOCK_KEY,
    ).fetchone()
    if row is None:
        return "an unknown session"
    pid, app, user, addr, started = row
    where = f" from {addr}" if addr else ""
    return f"pid {pid} ({app or 'no application_name'}, user {user}{where}, connected {started})"


@contextmanager
def migration_lock(target: DatabaseTarget, timeout_s: float, poll_s: float = 0.25) -> Iterator[None]:
    """Hold the migration lock for the duration of the block."""
    conn = target.connect(purpose="migration-lock")
    try:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            got = conn.execute("select pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()
            if got and got[0]:
                break
            if time.monotonic() >= deadline:
                holder = describe_holder(conn)
                raise LockHeld(
                    f"another neurant-db run holds the migration lock: {holder}; "
                    f"waited {timeout_s:g}s",
                    hint="wait for it to finish (--lock-timeout SECONDS waits longer); the lock "
                    "is released automatically when that session ends, even if it crashed",
                )
            time.sleep(poll_s)
        yield
    finally:
        conn.close()  # closing the session releases the advisory lock
