"""A scratch database: a new database with a random name on a server, dropped on exit
(also on error). The upgrade check migrates an old release in one; doctor and baseline
build the reference schema of the applied migrations in one (schema_diff.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from .database import DatabaseTarget, Source
from .errors import NeurantError


@contextmanager
def scratch_database(server: DatabaseTarget, prefix: str, *, purpose: str, why: str,
                     error: type[NeurantError] = NeurantError) -> Iterator[DatabaseTarget]:
    """`why` ends the hint when the database cannot be created ("the upgrade check needs ...")."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with server.connect(purpose=purpose) as admin:
        try:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise error(f"cannot create the scratch database {name}: "
                        f"{(exc.diag.message_primary or str(exc)).strip()}", hint=why) from None
    try:
        yield server.with_database(name, Source.THROWAWAY_DATABASE)
    finally:
        try:
            with server.connect(purpose=purpose) as admin:
                admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        except (NeurantError, psycopg.Error) as exc:
            raise error(f"could not drop the scratch database {name}: {exc}",
                        hint=f"drop it by hand: drop database {name} with (force)") from None
