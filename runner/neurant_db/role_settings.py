"""The settings the project gives the request roles, and what else a session left on them.

A request role can alter itself (`alter role authenticated set ...`, `... password 'x'`):
PostgreSQL lets a role change its own defaults and password, cluster-wide, and poolers
apply those defaults to every request (issue 20, item 2). Nothing can forbid it, so
`neurant-db doctor` and `preflight` report every setting (pg_db_role_setting) and password
of anon, authenticated and service_role the project did not set, with the statement that
undoes it. PROJECT_SETTINGS is the one source of the timeouts policies/0590 sets (rendered
into it as the template global `request_role_settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

REQUEST_ROLES = ("anon", "authenticated", "service_role")
# (role, setting, value): set by policies/0590 for the migrated database (alter role ... in
# database ...), unless the role has its own value for that setting.
PROJECT_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("anon", "statement_timeout", "3s"),
    ("anon", "lock_timeout", "2s"),
    ("anon", "idle_in_transaction_session_timeout", "15s"),
    ("authenticated", "statement_timeout", "8s"),
    ("authenticated", "lock_timeout", "4s"),
    ("authenticated", "idle_in_transaction_session_timeout", "30s"),
)
# Role-wide (every database) settings a platform sets and the migration keeps: Supabase gives
# anon 3s and authenticated 8s of statement_timeout.
PLATFORM_SETTINGS = {("anon", "statement_timeout"), ("authenticated", "statement_timeout")}

ROLE_SETTINGS = """
select r.rolname::text, d.datname::text, c.item
from pg_catalog.pg_db_role_setting s
join pg_catalog.pg_roles r on r.oid = s.setrole
left join pg_catalog.pg_database d on d.oid = s.setdatabase
cross join lateral pg_catalog.unnest(s.setconfig) as c (item)
where r.rolname = any(%s)
  and (s.setdatabase = 0 or d.datname = pg_catalog.current_database())
order by 1, 2 nulls first, 3
"""


@dataclass(frozen=True)
class ForeignSetting:
    """A setting of a request role the project did not make, and how to undo it."""

    role: str
    database: str | None  # None: every database (alter role ... set)
    name: str
    value: str
    undo: str

    @property
    def where(self) -> str:
        return f"in database {self.database}" if self.database else "in every database"


def foreign_settings(conn: psycopg.Connection) -> tuple[list[ForeignSetting], list[str]]:
    """(settings nobody here made, platform settings kept) of the request roles, for the
    current database and role-wide."""
    ours = {(role, name): value for role, name, value in PROJECT_SETTINGS}
    foreign: list[ForeignSetting] = []
    kept: list[str] = []
    for role, database, item in conn.execute(ROLE_SETTINGS, (list(REQUEST_ROLES),)).fetchall():
        name, _, value = str(item).partition("=")
        if database is not None and ours.get((role, name)) == value:
            continue
        if database is None and (role, name) in PLATFORM_SETTINGS:
            kept.append(f"{role} {name}={value}")
            continue
        scope = f" in database \"{database}\"" if database else ""
        if database is not None and (role, name) in ours:
            undo = f"alter role {role}{scope} set {name} = '{ours[(role, name)]}';"
        else:
            undo = f"alter role {role}{scope} reset {name};"
        foreign.append(ForeignSetting(role, database, name, value, undo))
    return foreign, kept


def roles_with_password(conn: psycopg.Connection) -> list[str] | None:
    """The request roles that have a password, or None when this role may not read pg_authid."""
    # Asked first rather than caught: no transaction block (preflight may talk to a pooler
    # that refuses them, and must say so itself).
    readable = conn.execute("select pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT')").fetchone()
    if not readable or not readable[0]:
        return None
    rows = conn.execute("select rolname::text from pg_catalog.pg_authid"
                        " where rolname = any(%s) and rolpassword is not null order by 1",
                        (list(REQUEST_ROLES),)).fetchall()
    return [r for (r,) in rows]
