"""Doctor checks against what a hostile session can do beyond the policies (issue 20).

`trigger.truncate`: TRUNCATE fires no row or delete trigger, so a table whose delete
triggers keep state elsewhere (counters, the members' chatbot visibility, the audit trail)
or guard a rule (one owner, holds are released) must refuse it: a before-truncate trigger
other than the legal-hold guard (which refuses only under a hold). The registry declares
the refusal (`truncate_refused`, schema/_truncate_refused.sql).

`role.setting`, `role.password`: settings (pg_db_role_setting) and passwords of anon,
authenticated and service_role that the project did not set (a request role can alter
itself, and poolers apply its defaults to every request), with the statement undoing each
(role_settings.py).

`function.search_path`: a function or procedure of ours without a fixed search_path
(Supabase's advisor: function_search_path_mutable) runs with the caller's path; the ones
that cannot take a SET clause say why in their COMMENT (`doctor: allow
function.search_path <reason>`): the job procedures (they commit) and the SQL functions the
batches inline.

`policy.permissive_overlap`: two permissive policies for the same role and command on one
table (Supabase's advisor: multiple_permissive_policies, each is evaluated for every row):
a warning, or info when one of them says why in its COMMENT (`doctor: allow
policy.permissive_overlap <reason>`).

`definer.exposed`: a security definer function in a schema the Data API exposes (public, and
any schema a role's `pgrst.db_schemas` setting names) that anon or authenticated may execute
(Supabase's advisor: authenticated_security_definer_function_executable) is an endpoint
running as its owner: an error, or info when its COMMENT says it is an RPC on purpose
(`doctor: allow definer.exposed <reason>`). The policy helpers live in private.

Run by `doctor.run_checks` on every profile.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg

from .doctor_finding import Finding, allowed_reason
from .role_settings import foreign_settings, roles_with_password

SCHEMAS = ("public", "private", "archive")
LEGAL_HOLD_GUARD = "private.legal_hold_guard"

DELETE_TRIGGERS = """
select pg_catalog.format('%%I.%%I', n.nspname, c.relname),
       pg_catalog.array_agg(t.tgname::text order by t.tgname)
         filter (where (t.tgtype & 8) = 8 and t.tgfoid::regproc::text <> %(guard)s) as on_delete,
       pg_catalog.bool_or((t.tgtype & 34) = 34 and t.tgfoid::regproc::text <> %(guard)s) as refuses_truncate
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_trigger t on t.tgrelid = c.oid and not t.tgisinternal and t.tgenabled <> 'D'
where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p')
group by c.oid, n.nspname, c.relname
order by 1
"""


def truncate_keeps_trigger_state(conn: psycopg.Connection) -> Iterator[Finding]:
    """A table with a delete trigger (other than the legal-hold guard) has a before-truncate
    trigger that refuses TRUNCATE, or the state its delete triggers keep goes stale."""
    rows = conn.execute(DELETE_TRIGGERS, {"guard": LEGAL_HOLD_GUARD, "schemas": list(SCHEMAS)}).fetchall()
    for table, on_delete, refuses in rows:
        if on_delete and not refuses:
            yield Finding("error", "trigger.truncate", table,
                          f"delete triggers ({', '.join(on_delete)}) keep state or rules that TRUNCATE, "
                          "which fires none of them, bypasses: nothing refuses TRUNCATE",
                          "Give the table truncate_refused = \"<what its delete triggers keep>\" in "
                          "schema/_tables.toml (a before truncate trigger running private.refuse_truncate).")


def request_roles_as_the_project_left_them(conn: psycopg.Connection) -> Iterator[Finding]:
    """No setting or password on a request role that the project did not set."""
    foreign, kept = foreign_settings(conn)
    for s in foreign:
        yield Finding("error", "role.setting", s.role,
                      f"{s.name} = {s.value} {s.where}: not set by neurant-db; a request role can alter "
                      "itself and poolers apply its defaults to every request",
                      f"Undo it (as a superuser or a role with CREATEROLE): {s.undo}")
    for item in kept:
        yield Finding("info", "role.setting", item.split(" ")[0],
                      f"{item} in every database: the platform's own (Supabase), kept by the migration")
    passwords = roles_with_password(conn)
    if passwords is None:
        yield Finding("warning", "role.password", "pg_authid",
                      "this role may not read pg_authid: run doctor as a superuser to check that the "
                      "request roles have no password")
        return
    for role in passwords:
        yield Finding("error", "role.password", role,
                      f"role {role} has a password: the request roles are reached by SET ROLE (or, on "
                      "profile citus, by an authentication the operator configures), never by a "
                      "password a session may have set on itself",
                      f"Remove it (as a superuser): alter role {role} password null;")


PATHLESS_FUNCTIONS = """
select p.oid::pg_catalog.regprocedure::text, coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname = any(%s)
  and not exists (select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
  and not coalesce(pg_catalog.array_to_string(p.proconfig, ',') ~ '(^|,)search_path=', false)
order by 1
"""


def functions_fix_their_search_path(conn: psycopg.Connection) -> Iterator[Finding]:
    """Every function and procedure sets search_path, or says in its COMMENT why it cannot."""
    for sig, note in conn.execute(PATHLESS_FUNCTIONS, (list(SCHEMAS),)).fetchall():
        allowed = allowed_reason("function.search_path", note)
        if allowed is not None:
            yield Finding("info", "function.search_path", sig, f"no fixed search_path on purpose: {allowed}")
        else:
            yield Finding("error", "function.search_path", sig,
                          "no fixed search_path: it runs with the caller's (Supabase's advisor: "
                          "function_search_path_mutable)",
                          "Add `set search_path = pg_catalog, pg_temp` to its header, or say why it cannot "
                          "in its COMMENT: doctor: allow function.search_path <reason>.")


PERMISSIVE_OVERLAPS = """
select pg_catalog.format('%%I.%%I', n.nspname, c.relname), x.cmd, r.rolname::text,
       pg_catalog.array_agg(p.polname::text order by p.polname),
       pg_catalog.string_agg(coalesce(pg_catalog.obj_description(p.oid, 'pg_policy'), ''), ' ')
from pg_catalog.pg_policy p
join pg_catalog.pg_class c on c.oid = p.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join lateral pg_catalog.unnest(case p.polcmd when '*' then array['r', 'a', 'w', 'd']::"char"[]
                                     else array[p.polcmd] end) as x (cmd)
cross join lateral pg_catalog.unnest(p.polroles) as pr (oid)
join pg_catalog.pg_roles r on r.oid = pr.oid
where p.polpermissive and n.nspname = any(%(schemas)s)
group by n.nspname, c.relname, x.cmd, r.rolname
having pg_catalog.count(*) > 1
order by 1, 2, 3
"""
_COMMANDS = {"r": "select", "a": "insert", "w": "update", "d": "delete"}


def permissive_policies_do_not_overlap(conn: psycopg.Connection) -> Iterator[Finding]:
    """One permissive policy per table, role and command, or a stated reason for more."""
    for table, cmd, role, names, notes in conn.execute(PERMISSIVE_OVERLAPS, {"schemas": list(SCHEMAS)}).fetchall():
        what = f"{table} {_COMMANDS.get(str(cmd), cmd)} {role}"
        allowed = allowed_reason("policy.permissive_overlap", notes)
        if allowed is not None:
            yield Finding("info", "policy.permissive_overlap", what,
                          f"{', '.join(names)} overlap on purpose: {allowed}")
        else:
            yield Finding("warning", "policy.permissive_overlap", what,
                          f"permissive policies {', '.join(names)} all apply: each is evaluated for every row "
                          "(Supabase's advisor: multiple_permissive_policies)",
                          "Merge them into one policy (USING a OR b, WITH CHECK c OR d: the same rows), or say "
                          "why not in one's COMMENT: doctor: allow policy.permissive_overlap <reason>.")


# PostgREST serves the schemas of its db-schemas setting (Supabase: public and graphql_public);
# set in the database it is the role setting pgrst.db_schemas (of its login role, authenticator).
EXPOSED_SCHEMAS = ("public",)
CONFIGURED_SCHEMAS = """
select pg_catalog.btrim(x.name)
from pg_catalog.pg_db_role_setting s
cross join lateral pg_catalog.unnest(s.setconfig) as c (item)
cross join lateral pg_catalog.regexp_split_to_table(pg_catalog.substr(c.item, 18), ',') as x (name)
where c.item like 'pgrst.db\\_schemas=%%'
  and (s.setdatabase = 0 or s.setdatabase = (select d.oid from pg_catalog.pg_database d
                                             where d.datname = pg_catalog.current_database()))
"""
EXPOSED_DEFINERS = """
select p.oid::pg_catalog.regprocedure::text, coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), ''),
       pg_catalog.array_remove(array[
         case when pg_catalog.has_function_privilege(a.oid, p.oid, 'execute') then 'anon' end,
         case when pg_catalog.has_function_privilege(u.oid, p.oid, 'execute') then 'authenticated' end],
         null)
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
cross join (select r.oid from pg_catalog.pg_roles r where r.rolname = 'anon') a
cross join (select r.oid from pg_catalog.pg_roles r where r.rolname = 'authenticated') u
where p.prosecdef and n.nspname = any(%s)
  and not exists (select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
  and (pg_catalog.has_function_privilege(a.oid, p.oid, 'execute')
       or pg_catalog.has_function_privilege(u.oid, p.oid, 'execute'))
order by 1
"""


def exposed_schemas(conn: psycopg.Connection) -> list[str]:
    """public, plus the schemas a pgrst.db_schemas role setting names in this database."""
    configured = [str(r[0]) for r in conn.execute(CONFIGURED_SCHEMAS).fetchall() if r[0]]
    return list(dict.fromkeys([*EXPOSED_SCHEMAS, *configured]))


def exposed_definers_are_declared_rpcs(conn: psycopg.Connection) -> Iterator[Finding]:
    """A security definer function the Data API serves to anon or authenticated is an RPC
    that says so in its COMMENT; any other (a policy helper) belongs in an unexposed schema."""
    for sig, note, roles in conn.execute(EXPOSED_DEFINERS, (exposed_schemas(conn),)).fetchall():
        allowed = allowed_reason("definer.exposed", note)
        if allowed is not None:
            yield Finding("info", "definer.exposed", sig, f"kept in the exposed schema on purpose: {allowed}")
        else:
            yield Finding("error", "definer.exposed", sig,
                          f"security definer function in a schema the Data API exposes, executable by "
                          f"{' and '.join(roles)}: an endpoint running as its owner (Supabase's advisor: "
                          "authenticated_security_definer_function_executable)",
                          "Move a helper to schema private (policies and functions call it there), or say "
                          "in its COMMENT why it is an RPC: doctor: allow definer.exposed <reason>.")


def run_session_checks(conn: psycopg.Connection) -> list[Finding]:
    """Every check of this module."""
    return [*truncate_keeps_trigger_state(conn), *request_roles_as_the_project_left_them(conn),
            *functions_fix_their_search_path(conn), *permissive_policies_do_not_overlap(conn),
            *exposed_definers_are_declared_rpcs(conn)]
