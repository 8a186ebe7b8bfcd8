"""Catalog checks that make a weak schema impossible to merge.

Each check reads pg_catalog and yields findings (level, check, object, message).
`neurant-db doctor` prints them and exits non-zero on any error; the test
suite runs it on the freshly migrated schema and expects no error.

An exception is declared in the schema itself, never in code: a unique key
that must stay global, or a foreign key served by a wider index, carries
`doctor: allow tenant.unique <reason>` / `doctor: allow fk.index <reason>` in
its COMMENT and is reported as info with that reason. A function that reads a
session setting other than the JWT claims (request.jwt.*) says why in its body or
COMMENT, `doctor: allow setting.read <name> <reason>`: no setting a client can set
may decide anything security-relevant (check setting.read; trigger.depth likewise
for pg_trigger_depth()).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

SCHEMAS = ("public", "private", "archive")
TENANT_KEY = "company_id"
TENANT_ROOT = "public.companies"
CONTEXT_FUNCTIONS = ("get_user_company_id", "get_current_user_id", "get_user_role",
                     "get_assigned_chatbot_ids", "uid", "jwt", "role", "email")


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | info
    check: str
    object: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


Check = Callable[[psycopg.Connection], Iterator[Finding]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def _rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, (list(SCHEMAS), *params)).fetchall()


TABLES = """
select c.oid, n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity,
       exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id'
               and not a.attisdropped) as has_tenant_key
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and n.nspname = any(%s) and not c.relispartition
  and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
order by 2
"""


def _tenant_tables(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return [r for r in _rows(conn, TABLES) if r[4] or r[1] == TENANT_ROOT]


@check
def rls_enabled_and_forced(conn: psycopg.Connection) -> Iterator[Finding]:
    for _oid, name, rls, force, _tenant in _rows(conn, TABLES):
        if not rls:
            yield Finding("error", "rls.enabled", name, "row level security is not enabled")
        elif not force:
            yield Finding("error", "rls.forced", name,
                          "row level security is not forced (the table owner bypasses it)")


@check
def table_has_policy(conn: psycopg.Connection) -> Iterator[Finding]:
    for oid, name, _rls, _force, _tenant in _rows(conn, TABLES):
        if not conn.execute("select 1 from pg_policy where polrelid = %s", (oid,)).fetchone():
            yield Finding("error", "rls.policy", name,
                          "no policy: say who may do what, or state `using (false)` explicitly")


@check
def policies_name_roles(conn: psycopg.Connection) -> Iterator[Finding]:
    for name, policy in _rows(conn, """
        select n.nspname || '.' || c.relname, p.polname
        from pg_policy p join pg_class c on c.oid = p.polrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%s) and 0 = any(p.polroles)"""):
        yield Finding("error", "policy.roles", f"{name}.{policy}",
                      "policy applies to PUBLIC: name its roles (TO authenticated, ...)")


@check
def policy_helpers_once_per_statement(conn: psycopg.Connection) -> Iterator[Finding]:
    call = re.compile(r"(?:\b\w+\.)?\b(" + "|".join(CONTEXT_FUNCTIONS) + r")\(\)")
    for name, policy, qual, check_expr in _rows(conn, """
        select n.nspname || '.' || c.relname, p.polname,
               coalesce(pg_get_expr(p.polqual, p.polrelid), ''),
               coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
        from pg_policy p join pg_class c on c.oid = p.polrelid
        join pg_namespace n on n.oid = c.relnamespace where n.nspname = any(%s)"""):
        for expr in (qual, check_expr):
            for m in call.finditer(expr):
                before = expr[: m.start()].rstrip()
                if not before.upper().endswith("SELECT"):
                    yield Finding("error", "policy.initplan", f"{name}.{policy}",
                                  f"{m.group(0)} is evaluated per row: wrap it as (select {m.group(0)})")
                    break


@check
def security_definer_hygiene(conn: psycopg.Connection) -> Iterator[Finding]:
    for sig, config, public_exec, anon_exec in _rows(conn, """
        select p.oid::regprocedure::text, coalesce(array_to_string(p.proconfig, ','), ''),
               has_function_privilege('public', p.oid, 'execute')
                 and (p.proacl is null or exists (select 1 from aclexplode(p.proacl) a
                                                  where a.grantee = 0)),
               exists (select 1 from pg_roles r where r.rolname = 'anon')
                 and has_function_privilege('anon', p.oid, 'execute')
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and p.prosecdef
          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')"""):
        if "search_path=" not in config:
            yield Finding("error", "definer.search_path", sig,
                          "security definer function does not set search_path (use set search_path = '')")
        if public_exec:
            yield Finding("error", "definer.execute", sig,
                          "security definer function is executable by PUBLIC: revoke it and grant to roles")
        elif anon_exec:
            yield Finding("error", "definer.anon", sig,
                          "security definer function is executable by anon")


@check
def views_are_security_invoker(conn: psycopg.Connection) -> Iterator[Finding]:
    for (name,) in _rows(conn, """
        select n.nspname || '.' || c.relname from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'v' and n.nspname = any(%s)
          and not coalesce(c.reloptions @> array['security_invoker=true'], false)"""):
        yield Finding("error", "view.invoker", name,
                      "view runs with its owner's rights: create it with (security_invoker = true)")


@check
def foreign_keys_are_indexed(conn: psycopg.Connection) -> Iterator[Finding]:
    for name, con, note in _rows(conn, """
        select n.nspname || '.' || c.relname, k.conname,
               coalesce(obj_description(k.oid, 'pg_constraint'), '')
        from pg_constraint k join pg_class c on c.oid = k.conrelid
        join pg_namespace n on n.oid = c.relnamespace
        where k.contype = 'f' and n.nspname = any(%s)
          and not exists (
            select 1 from pg_index i where i.indrelid = k.conrelid
              and (i.indkey::int2[])[0:array_length(k.conkey, 1) - 1] @> k.conkey
              and (i.indkey::int2[])[0:array_length(k.conkey, 1) - 1] <@ k.conkey)"""):
        allowed = re.search(r"doctor: allow fk\.index\b[:\s]*(.*)", note)
        if allowed:
            yield Finding("info", "fk.index", f"{name}.{con}",
                          f"no exact index kept on purpose: {allowed.group(1).strip() or 'see comment'}")
            continue
        yield Finding("error", "fk.index", f"{name}.{con}",
                      "foreign key has no index leading with its columns")


@check
def everything_has_a_comment(conn: psycopg.Connection) -> Iterator[Finding]:
    for kind, obj in _rows(conn, """
        select 'table', n.nspname || '.' || c.relname from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'v', 'm') and n.nspname = any(%s)
          and obj_description(c.oid, 'pg_class') is null
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
        union all
        select 'column', n.nspname || '.' || c.relname || '.' || a.attname from pg_attribute a
        join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'v', 'm') and n.nspname = any(%s) and a.attnum > 0
          and not a.attisdropped and col_description(c.oid, a.attnum) is null
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
        union all
        select 'function', p.oid::regprocedure::text from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and obj_description(p.oid, 'pg_proc') is null
          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
        union all
        select 'policy', n.nspname || '.' || c.relname || '.' || p.polname from pg_policy p
        join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%s) and obj_description(p.oid, 'pg_policy') is null
        union all
        select 'type', n.nspname || '.' || t.typname from pg_type t
        join pg_namespace n on n.oid = t.typnamespace
        where n.nspname = any(%s) and t.typtype in ('e', 'd') and obj_description(t.oid, 'pg_type') is null
          and not exists (select 1 from pg_depend d where d.objid = t.oid and d.deptype = 'e')
        union all
        select 'trigger', n.nspname || '.' || c.relname || '.' || g.tgname from pg_trigger g
        join pg_class c on c.oid = g.tgrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%s) and not g.tgisinternal and obj_description(g.oid, 'pg_trigger') is null
        order by 1, 2""", *[list(SCHEMAS)] * 5):
        yield Finding("error", "comment", obj, f"{kind} has no COMMENT ON")


@check
def tenant_keys(conn: psycopg.Connection) -> Iterator[Finding]:
    tenant = {r[0]: r[1] for r in _tenant_tables(conn)}
    for oid, name in tenant.items():
        if name == TENANT_ROOT:
            continue
        notnull = conn.execute(
            "select attnotnull from pg_attribute where attrelid = %s and attname = 'company_id'",
            (oid,)).fetchone()
        if not (notnull and notnull[0]):
            yield Finding("error", "tenant.not_null", name, "company_id must be NOT NULL")
        for idx, primary, note in conn.execute("""
            select i.indexrelid::regclass::text, i.indisprimary,
                   coalesce(obj_description(i.indexrelid, 'pg_class'),
                            (select obj_description(k.oid, 'pg_constraint') from pg_constraint k
                             where k.conindid = i.indexrelid and k.conrelid = i.indrelid), '')
            from pg_index i
            where i.indrelid = %s and (i.indisunique or i.indisprimary)
              and not exists (select 1 from pg_attribute a where a.attrelid = i.indrelid
                              and a.attname = 'company_id' and a.attnum = any(i.indkey))""",
                                         (oid,)).fetchall():
            kind = "primary key" if primary else "unique key"
            allowed = re.search(r"doctor: allow tenant\.unique\b[:\s]*(.*)", note)
            if allowed:
                yield Finding("info", "tenant.unique", f"{name} {idx.split('.')[-1]}",
                              f"global {kind} kept on purpose: {allowed.group(1).strip() or 'see comment'}")
                continue
            yield Finding("error", "tenant.unique", f"{name} {idx.split('.')[-1]}",
                          f"{kind} does not include company_id (not distributable, leaks across tenants)")
    for con, src, dst, src_oid, dst_oid, has_key, upd, dele in conn.execute("""
        select k.conname, k.conrelid::regclass::text, k.confrelid::regclass::text,
               k.conrelid, k.confrelid,
               exists (select 1 from pg_attribute a where a.attrelid = k.conrelid
                       and a.attname = 'company_id' and a.attnum = any(k.conkey)),
               k.confupdtype, k.confdeltype
        from pg_constraint k where k.contype = 'f'""").fetchall():
        if src_oid not in tenant or dst_oid not in tenant or tenant[dst_oid] == TENANT_ROOT:
            continue
        src, dst = tenant[src_oid], tenant[dst_oid]
        if not has_key:
            yield Finding("error", "tenant.fk", f"{src}.{con}",
                          f"foreign key to tenant table {dst} does not include company_id")
        else:
            if upd not in ("a", "r"):
                yield Finding("error", "tenant.fk_action", f"{src}.{con}",
                              "ON UPDATE action on a key containing company_id (Citus rejects it)")
            if dele in ("n", "d"):
                yield Finding("error", "tenant.fk_action", f"{src}.{con}",
                              "ON DELETE SET NULL/DEFAULT on a key containing company_id (Citus rejects it)")


@check
def tenant_tables_cascade_from_company(conn: psycopg.Connection) -> Iterator[Finding]:
    for oid, name, *_rest in _tenant_tables(conn):
        if name == TENANT_ROOT:
            continue
        direct = conn.execute(
            "select 1 from pg_constraint where conrelid = %s and contype = 'f' "
            "and confrelid = %s::regclass and confdeltype = 'c'", (oid, TENANT_ROOT)).fetchone()
        if direct:
            continue
        note_row = conn.execute("select coalesce(obj_description(%s, 'pg_class'), '')", (oid,)).fetchone()
        allowed = re.search(r"doctor: allow tenant\.cascade\b[:\s]*(.*)", note_row[0] if note_row else "")
        if allowed:
            yield Finding("info", "tenant.cascade", name,
                          f"no company FK on purpose: {allowed.group(1).strip() or 'see comment'}")
        else:
            yield Finding("error", "tenant.cascade", name,
                          "no (company_id) -> companies FK with ON DELETE CASCADE: deleting a company "
                          "would leave or block its rows")


@check
def reference_tables(conn: psycopg.Connection) -> Iterator[Finding]:
    for _oid, name, _rls, _force, has_key in _rows(conn, TABLES):
        if not has_key and name != TENANT_ROOT:
            yield Finding("info", "tenant.global", name,
                          "global table (no company_id): a reference table on Citus")


# Settings a function or policy may read for a decision: the JWT claims (set by PostgREST /
# Supabase per request). Any other setting a client can set (custom `neurant.*` settings,
# ...) must not decide anything security-relevant; a read of another setting is an error
# unless the function says why it is harmless with `doctor: allow setting.read <name> <reason>`
# (in its body or its COMMENT). pg_trigger_depth() likewise: `doctor: allow trigger.depth <reason>`.
TRUSTED_SETTINGS = re.compile(r"request\.jwt\.claim(?:s|\..+)?")
SETTING_READ = re.compile(r"\bcurrent_setting\s*\(\s*(?:'([^']*)'|([^'\s)][^)]*))", re.IGNORECASE)
TRIGGER_DEPTH = re.compile(r"\bpg_trigger_depth\s*\(", re.IGNORECASE)


def _setting_allowed(note: str, name: str) -> str | None:
    for m in re.finditer(r"doctor: allow setting\.read\s+(\S+)[:\s]*(.*)", note):
        if m.group(1).rstrip(":") == name:
            return m.group(2).strip() or "see comment"
    return None


@check
def settings_do_not_decide(conn: psycopg.Connection) -> Iterator[Finding]:
    for sig, body, note in conn.execute("""
        select p.oid::regprocedure::text, coalesce(p.prosrc, ''),
               coalesce(obj_description(p.oid, 'pg_proc'), '')
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        join pg_language l on l.oid = p.prolang
        where (n.nspname = any(%s) or n.nspname = 'auth') and l.lanname not in ('c', 'internal')
          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
        order by 1""", (list(SCHEMAS),)).fetchall():
        note = f"{body}\n{note}"
        for m in SETTING_READ.finditer(body):
            name = m.group(1) if m.group(1) is not None else "*"
            if m.group(1) is not None and TRUSTED_SETTINGS.fullmatch(name):
                continue
            reason = _setting_allowed(note, name)
            if reason:
                yield Finding("info", "setting.read", f"{sig} {name}", f"read on purpose: {reason}")
            elif m.group(1) is None:
                yield Finding("error", "setting.read", f"{sig} *",
                              "reads a setting named at run time: name it literally, and never "
                              "decide anything on a setting a client can set")
            else:
                yield Finding("error", "setting.read", f"{sig} {name}",
                              f"reads setting {name}, which a client can set: decide nothing on it "
                              "(only request.jwt.* is trusted), or say why with "
                              f"`doctor: allow setting.read {name} <reason>`")
        if TRIGGER_DEPTH.search(body):
            allowed = re.search(r"doctor: allow trigger\.depth\b[:\s]*(.*)", note)
            if allowed:
                yield Finding("info", "trigger.depth", sig,
                              f"reads pg_trigger_depth() on purpose: {allowed.group(1).strip() or 'see comment'}")
            else:
                yield Finding("error", "trigger.depth", sig,
                              "decides on pg_trigger_depth(): any client reaches any depth with a "
                              "trigger of its own")
    for name, policy, expr in _rows(conn, """
        select n.nspname || '.' || c.relname, p.polname,
               coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' '
                 || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
        from pg_policy p join pg_class c on c.oid = p.polrelid
        join pg_namespace n on n.oid = c.relnamespace where n.nspname = any(%s)"""):
        for m in SETTING_READ.finditer(expr):
            if m.group(1) is None or not TRUSTED_SETTINGS.fullmatch(m.group(1)):
                yield Finding("error", "setting.read", f"{name}.{policy}",
                              f"policy reads setting {m.group(1) or '(named at run time)'}: "
                              "only request.jwt.* may decide access")


def run_checks(conn: psycopg.Connection) -> list[Finding]:
    findings: list[Finding] = []
    for fn in CHECKS:
        findings.extend(fn(conn))
    return findings
