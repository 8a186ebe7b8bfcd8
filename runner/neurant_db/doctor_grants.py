"""Doctor's grant checks: what the client roles (anon, authenticated, and PUBLIC, which
every role inherits) hold on the tables and sequences of the project's schemas.

Supabase's default privileges grant anon and authenticated every privilege on each table
and sequence `postgres` creates in public, so an object made outside the migrations (or a
migration that forgot its `{{ rls(...) }}` header) is open to every visitor:
- grant.table: a table-level privilege of a client role that its entry in the table
  registry (schema/_tables.toml, `grants`) does not list; a table the registry does not
  know may grant them nothing. Column-level grants are the isolation matrix's to check.
- grant.sequence: any privilege of a client role on a sequence (USAGE lets anon call
  nextval, UPDATE setval: one setval to the maximum stops the table's inserts). The
  registry's `sequences` are revoked by `{{ rls(...) }}`.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg

from .doctor_finding import Finding
from .table_registry import REGISTRY_FILE, Registry

CLIENT_ROLES = ("anon", "authenticated", "public")

PRIVILEGES = """
select c.relkind::text, n.nspname || '.' || c.relname, coalesce(r.rolname, 'public'), a.privilege_type
from pg_class c join pg_namespace n on n.oid = c.relnamespace
cross join lateral aclexplode(c.relacl) a
left join pg_roles r on r.oid = a.grantee
where c.relkind in ('r', 'p', 'S') and n.nspname = any(%s)
  and coalesce(r.rolname, 'public') = any(%s)
  and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
order by 2, 3, 4
"""


def _allowed(registry: Registry, table: str, role: str) -> set[str] | None:
    """The table-level privileges the registry grants `role` (None: an unregistered table)."""
    entry = registry.get(table)
    if entry is None:
        return None
    return {p.upper() for p in entry.grants.get(role, ()) if "(" not in p}


def run_grant_checks(conn: psycopg.Connection, schemas: tuple[str, ...], registry: Registry) -> Iterator[Finding]:
    held: dict[tuple[str, str, str], list[str]] = {}
    for kind, name, role, privilege in conn.execute(PRIVILEGES, (list(schemas), list(CLIENT_ROLES))).fetchall():
        held.setdefault((kind, name, role), []).append(privilege)
    for (kind, name, role), privileges in held.items():
        if kind == "S":
            yield Finding("error", "grant.sequence", f"{name} {role}",
                          f"{role} holds {', '.join(privileges)} on the sequence (nextval/currval/setval)",
                          hint=f"Revoke all on sequence {name} from {role}; list it under `sequences` of its "
                               f"table in {REGISTRY_FILE} so rls() does.")
            continue
        allowed = _allowed(registry, name, role)
        extra = [p for p in privileges if allowed is None or p not in allowed]
        if extra:
            where = "its registry entry grants" if allowed is not None else f"{REGISTRY_FILE} does not list the table"
            yield Finding("error", "grant.table", f"{name} {role}",
                          f"{role} holds {', '.join(extra)} beyond what {where}",
                          hint=f"Revoke all on table {name} from {role} (the RLS header {{{{ rls('{name}') }}}} "
                               "does), then grant only what the registry lists.")
