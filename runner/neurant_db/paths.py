"""Where the SQL files live: inside the wheel, or at the root of a source checkout."""

from __future__ import annotations

import os
from pathlib import Path

MIGRATION_FOLDERS = ("schema", "functions", "policies", "indexes", "seeds")


def sql_root() -> Path:
    """Return the folder holding schema/, functions/, ... and tests/ (pgTAP suites).

    NEURANT_SQL_ROOT overrides it (used by tests to point at a scratch copy).
    """
    override = os.environ.get("NEURANT_SQL_ROOT")
    if override:
        return Path(override).resolve()
    packaged = Path(__file__).parent / "sql"
    if (packaged / "schema").is_dir():
        return packaged
    return Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """The local state folder (.neurant/): embedded server data, pgTAP cache."""
    override = os.environ.get("NEURANT_HOME")
    base = Path(override) if override else Path.cwd() / ".neurant"
    return base.resolve()
