"""Open a request on a Citus cluster (profile citus): the claims and the role reach the
workers only when sent this way (issue 12, docs/services.md "Citus").

1. `SET LOCAL ROLE <request role>` (a LOGIN role: Citus connects to the workers as it),
   first: sent after the propagate setting, the role change would be replayed on every
   worker connection Citus opens in the transaction, those of a security definer
   function's owner included, and the definer's reads fail there with `42501` (issue 19);
2. `SET LOCAL citus.propagate_set_commands = 'local'`: Citus then forwards the later SET
   LOCALs of the transaction to the worker connections it opens;
3. `SET LOCAL request.jwt.claims = '<json>'`: what auth.uid() / auth.jwt() read (a
   `set_config(..., true)` is not propagated: on the workers auth.uid() would be null and
   every policy fail closed).

Each is sent as its own statement, never batched with another: Citus re-sends the whole
query string that held a SET LOCAL to every worker. Plain PostgreSQL accepts the same
sequence (the citus setting is then an inert placeholder), so one code path serves both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from .errors import BadArgument

REQUEST_ROLES = ("authenticated", "anon")
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def request_statements(claims: Mapping[str, Any], role: str = "authenticated") -> list[sql.Composed]:
    """The three statements that open a request, in order, each to be sent alone."""
    if not ROLE_NAME.match(role):
        raise BadArgument(f"request role must be a plain lower-case role name, not {role!r}",
                          hint="use authenticated (a signed-in user) or anon")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise BadArgument("the claim sub must be a string (the auth.users id)")
    text = json.dumps(dict(claims), separators=(",", ":"), sort_keys=True)
    return [
        sql.SQL("set local role {}").format(sql.Identifier(role)),
        sql.SQL("set local citus.propagate_set_commands = 'local'").format(),
        sql.SQL("set local request.jwt.claims = {}").format(sql.Literal(text)),
    ]


@contextmanager
def citus_request(conn: psycopg.Connection[Any], claims: Mapping[str, Any],
                  role: str = "authenticated") -> Iterator[psycopg.Connection[Any]]:
    """A transaction on `conn` acting as the JWT `claims` under `role`; committed when the
    block ends, rolled back on an exception. The settings and the role end with it, so a
    pooled connection carries nothing to the next request."""
    statements = request_statements(claims, role)
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)  # one statement per round trip: never batched
        yield conn
