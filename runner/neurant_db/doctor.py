"""Catalog checks that make a weak schema impossible to merge.

Each check reads pg_catalog and yields findings (level, check, object, message).
`neurant-db doctor` prints them and exits non-zero on any error; the test
suite runs it on the freshly migrated schema and expects no error.

Which tables are tenant tables, and the exceptions of a table and of its keys (a tenant
table that holds no records, `legal_hold`; one without its company FK, `tenant.cascade`; a
unique key that must stay global, `tenant.unique <key>`; a foreign key served by a wider
index, `fk.index <constraint>`), come from the table registry schema/_tables.toml
(table_registry.py), which also renders them into the COMMENT of the table or key; an
exception is reported as info with its reason, and a table the registry does not list is
an error (registry.table). The exceptions of functions are declared in the schema itself,
never in code. A function that reads a
session setting other than the JWT claims (request.jwt.*) says why in its body or
COMMENT, `doctor: allow setting.read <name> <reason>`: no setting a client can set
may decide anything security-relevant (check setting.read; trigger.depth likewise
for pg_trigger_depth()).

What the client roles hold on tables and sequences: doctor_grants.py (grant.table,
grant.sequence).

`run_checks(conn, profile)`: the checks of doctor_sessions.py (trigger.truncate) always run
too; with profile citus the Citus rules of doctor_citus.py as well
(and policy.initplan does not: Citus refuses the (select f()) it asks for).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from .doctor_citus import run_citus_checks
from .doctor_finding import Finding, allowed_reason
from .doctor_grants import run_grant_checks
from .doctor_sessions import run_session_checks
from .migrate import migration_gap
from .online import invalid_indexes
from .sql_code import code_only
from .table_registry import REGISTRY_FILE, Registry, load_if_present

SCHEMAS = ("public", "private", "archive")
TENANT_KEY = "company_id"
TENANT_ROOT = "public.companies"
CONTEXT_FUNCTIONS = ("get_user_company_id", "get_current_user_id", "get_user_role",
                     "get_assigned_chatbot_ids", "get_visible_chatbot_ids", "require_company_writable", "uid",
                     "jwt", "role", "email")
WRITABLE_CHECK = "require_company_writable"
END_USER_ROLE = "authenticated"


Check = Callable[[psycopg.Connection], Iterator[Finding]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def _rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, (list(SCHEMAS), *params)).fetchall()


@check
def schema_is_complete(conn: psycopg.Connection) -> Iterator[Finding]:
    """First: every other check reads a catalog that is only complete when the ledger holds
    every migration this runner knows (an unmigrated schema has nothing to flag)."""
    gap = migration_gap(conn)
    if gap is None:
        yield Finding("warning", "schema.migrations", "neurant_meta",
                      "this role may not read the migration ledger: run doctor as the migration owner "
                      "to know whether the schema is complete")
        return
    if gap.pending:
        yield Finding("error", "schema.migrations", "neurant_meta.schema_migrations",
                      f"{gap.message} (pending: {', '.join(gap.pending[:5])}"
                      f"{', ...' if len(gap.pending) > 5 else ''}); the checks below see an incomplete schema")
    if gap.missing:
        yield Finding("error", "schema.migrations", "neurant_meta.schema_migrations",
                      f"applied migrations this runner does not know: {', '.join(gap.missing)} (a newer "
                      "release applied them, or their files are gone): run doctor from that release")


TABLES = """
select c.oid, n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity,
       exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id'
               and not a.attisdropped) as has_tenant_key
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and n.nspname = any(%s) and not c.relispartition
  and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
order by 2
"""


def _registry() -> Registry:
    """The table registry (schema/_tables.toml): which tables are tenant tables and which
    exceptions they carry. A table it does not list is judged by its columns (registry.table
    flags it)."""
    return load_if_present()


def _is_tenant(registry: Registry, name: str, has_tenant_key: bool) -> bool:
    entry = registry.get(name)
    return entry.tenant if entry is not None else has_tenant_key or name == TENANT_ROOT


def _tenant_tables(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    registry = _registry()
    return [r for r in _rows(conn, TABLES) if _is_tenant(registry, r[1], r[4])]


@check
def tables_are_registered(conn: psycopg.Connection) -> Iterator[Finding]:
    """Every table is in schema/_tables.toml, as a tenant table exactly when it has company_id
    (the templates and the other checks take their expectations from there)."""
    registry = _registry()
    for _oid, name, _rls, _force, has_key in _rows(conn, TABLES):
        entry = registry.get(name)
        if entry is None:
            yield Finding("error", "registry.table", name,
                          f"not in {REGISTRY_FILE}: add its entry (scope, read_only, legal_hold or "
                          "allow.legal_hold, citus, ...) so the generated SQL and doctor know it")
        elif entry.scope != "root" and entry.tenant != has_key:
            yield Finding("error", "registry.table", name,
                          f"{REGISTRY_FILE} says scope = \"{entry.scope}\" but the table "
                          f"{'has no' if entry.tenant else 'has a'} {TENANT_KEY} column")


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
               coalesce(has_function_privilege((select r.oid from pg_roles r where r.rolname = 'anon'),
                                               p.oid, 'execute'), false)
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and p.prosecdef
          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')"""):
        if not re.search(r"(^|,)search_path=(.*, )?pg_temp(,|$)", config):
            # Not set, or set without pg_temp last: an unlisted pg_temp is searched FIRST for
            # relations and types (even under search_path = ''), so a temp table or domain
            # an end user created on the session would shadow a name the function uses.
            yield Finding("error", "definer.search_path", sig,
                          "security definer function does not pin search_path with pg_temp last "
                          "(use set search_path = pg_catalog, pg_temp)")
        if public_exec:
            yield Finding("error", "definer.execute", sig,
                          "security definer function is executable by PUBLIC: revoke it and grant to roles")
        elif anon_exec:
            yield Finding("error", "definer.anon", sig,
                          "security definer function is executable by anon")


@check
def views_are_security_invoker(conn: psycopg.Connection) -> Iterator[Finding]:
    """Our views run with the caller's rights; an extension's own views (Citus's
    public.citus_tables, public.citus_schemas) are the extension's to define."""
    for (name,) in _rows(conn, """
        select n.nspname || '.' || c.relname from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'v' and n.nspname = any(%s)
          and not coalesce(c.reloptions @> array['security_invoker=true'], false)
          and not exists (select 1 from pg_depend d
                           where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')"""):
        yield Finding("error", "view.invoker", name,
                      "view runs with its owner's rights: create it with (security_invoker = true)")


@check
def foreign_keys_are_indexed(conn: psycopg.Connection) -> Iterator[Finding]:
    for name, con in _rows(conn, """
        select n.nspname || '.' || c.relname, k.conname
        from pg_constraint k join pg_class c on c.oid = k.conrelid
        join pg_namespace n on n.oid = c.relnamespace
        where k.contype = 'f' and n.nspname = any(%s)
          and not exists (
            select 1 from pg_index i where i.indrelid = k.conrelid
              and (i.indkey::int2[])[0:array_length(k.conkey, 1) - 1] @> k.conkey
              and (i.indkey::int2[])[0:array_length(k.conkey, 1) - 1] <@ k.conkey)"""):
        allowed = _table_allows(name, f"fk.index {con}")
        if allowed is not None:
            yield Finding("info", "fk.index", f"{name}.{con}", f"no exact index kept on purpose: {allowed}")
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
        for idx, primary in conn.execute("""
            select i.indexrelid::regclass::text, i.indisprimary
            from pg_index i
            where i.indrelid = %s and (i.indisunique or i.indisprimary)
              and not exists (select 1 from pg_attribute a where a.attrelid = i.indrelid
                              and a.attname = 'company_id' and a.attnum = any(i.indkey))""",
                                         (oid,)).fetchall():
            kind = "primary key" if primary else "unique key"
            allowed = _table_allows(name, f"tenant.unique {idx.split('.')[-1]}")
            if allowed is not None:
                yield Finding("info", "tenant.unique", f"{name} {idx.split('.')[-1]}",
                              f"global {kind} kept on purpose: {allowed}")
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
            # CONVENTIONS binds every profile: a tenant key never changes or goes null
            # through a foreign key action (Citus also refuses these: citus.fk_action).
            if upd not in ("a", "r"):
                yield Finding("error", "tenant.fk_action", f"{src}.{con}",
                              "ON UPDATE action on a key containing company_id (Citus rejects it)")
            if dele in ("n", "d"):
                yield Finding("error", "tenant.fk_action", f"{src}.{con}",
                              "ON DELETE SET NULL/DEFAULT on a key containing company_id (Citus rejects it)")


def _table_allows(name: str, exception: str) -> str | None:
    """The reason the registry gives for an exception of the table or of one of its keys
    (allow."<exception>"), else None. (The COMMENT of the table or key repeats it as
    `doctor: allow <check> <reason>`, for a DBA.)"""
    entry = _registry().get(name)
    return entry.allow.get(exception) if entry is not None else None


@check
def tenant_tables_cascade_from_company(conn: psycopg.Connection) -> Iterator[Finding]:
    for oid, name, *_rest in _tenant_tables(conn):
        if name == TENANT_ROOT:
            continue
        direct = conn.execute(
            "select 1 from pg_constraint where conrelid = %s and contype = 'f' "
            "and confrelid = to_regclass(%s) and confdeltype = 'c'", (oid, TENANT_ROOT)).fetchone()
        if direct:
            continue
        allowed = _table_allows(name, "tenant.cascade")
        if allowed is not None:
            yield Finding("info", "tenant.cascade", name, f"no company FK on purpose: {allowed}")
        else:
            yield Finding("error", "tenant.cascade", name,
                          "no (company_id) -> companies FK with ON DELETE CASCADE: deleting a company "
                          "would leave or block its rows")


TRIGGERS_OF = """
select p.proname, t.tgtype, t.tgattr::text
from pg_trigger t join pg_proc p on p.oid = t.tgfoid
join pg_namespace pn on pn.oid = p.pronamespace
where t.tgrelid = %s and not t.tgisinternal and t.tgenabled <> 'D' and pn.nspname = 'private'
"""
# pg_trigger.tgtype bits
TG_ROW, TG_BEFORE, TG_INSERT, TG_DELETE, TG_UPDATE, TG_TRUNCATE = 1, 2, 4, 8, 16, 32


def _has_trigger(triggers: list[tuple[Any, ...]], function: str, bits: int, *, all_columns: bool = False) -> bool:
    return any(name == function and (tgtype & bits) == bits and (not all_columns or attr == "")
               for name, tgtype, attr in triggers)


# The tenant guard's triggers (schema/0060_tenant_guard.sql): the WHEN clauses they may
# carry are exactly the function's own first tests, as pg_get_triggerdef prints them.
GUARD_TRIGGERS_OF = """
select t.tgtype, t.tgattr::text, substring(pg_catalog.pg_get_triggerdef(t.oid) from ' WHEN (.*) EXECUTE ')
from pg_trigger t
where t.tgrelid = %s and not t.tgisinternal and t.tgenabled <> 'D'
  and t.tgfoid = pg_catalog.to_regprocedure('private.reject_other_tenant_insert()')
"""
# The table as a regclass constant, or as text (profile citus: resolved when it fires, so
# valid on a worker before the table's shell exists there, runner/neurant_db/citus_render.py).
GUARD_INSERT_WHEN = re.compile(
    r"\(row_security_active\((?:\('(?P<table>[^']+)'::regclass\)::oid|'(?P<text>[^']+)'::text)\)\)")
GUARD_UPDATE_WHEN = "((new.company_id IS DISTINCT FROM old.company_id))"


def _guard_covers(conn: psycopg.Connection, oid: int, tgtype: int, attr: str, when: str | None) -> tuple[bool, bool]:
    """(covers insert, covers every update) for one trigger running the tenant guard."""
    if (tgtype & (TG_ROW | TG_BEFORE)) != TG_ROW | TG_BEFORE:
        return False, False
    insert = bool(tgtype & TG_INSERT)
    update = bool(tgtype & TG_UPDATE) and attr == ""
    if when is None:
        return insert, update
    if insert and not update:
        m = GUARD_INSERT_WHEN.fullmatch(when)
        if m:
            row = conn.execute("select to_regclass(%s)::oid = %s", (m["table"] or m["text"], oid)).fetchone()
            return bool(row and row[0]), False
    if update and not insert and when == GUARD_UPDATE_WHEN:
        return False, True
    return False, False  # any other condition could skip the guard


@check
def tenant_key_is_guarded(conn: psycopg.Connection) -> Iterator[Finding]:
    """Every tenant table (live, archive, private) runs private.reject_other_tenant_insert
    before insert and before every update: members insert only into their own company,
    and company_id never changes, for any role (issue 9). The triggers may carry only
    the function's own first tests as WHEN clauses (row_security_active of the table on
    insert, a changed company_id on update); any other condition fails the check."""
    for oid, name, *_rest in _tenant_tables(conn):
        if name == TENANT_ROOT:
            continue
        covered = [_guard_covers(conn, oid, tgtype, attr, when)
                   for tgtype, attr, when in conn.execute(GUARD_TRIGGERS_OF, (oid,)).fetchall()]
        if not (any(i for i, _u in covered) and any(u for _i, u in covered)):
            yield Finding("error", "tenant.guard", name,
                          "no tenant guard: add trigger <table>_0_tenant_guard before insert for each row "
                          "when (pg_catalog.row_security_active('<table>'::regclass)) and <table>_0_tenant_key "
                          "before update for each row when (new.company_id is distinct from old.company_id), "
                          "both executing private.reject_other_tenant_insert() "
                          "(company_id would be mutable, and members could propose other companies' rows)")


@check
def tenant_tables_honour_legal_holds(conn: psycopg.Connection) -> Iterator[Finding]:
    """Every tenant table holding records runs private.legal_hold_guard before update or
    delete (per row) and before truncate, so an active legal hold stops every path; a table
    that holds no records says why in the registry (allow.legal_hold)."""
    for oid, name, *_rest in _tenant_tables(conn):
        triggers = conn.execute(TRIGGERS_OF, (oid,)).fetchall()
        row_bits = TG_ROW | TG_BEFORE | TG_DELETE | (0 if name == TENANT_ROOT else TG_UPDATE)
        missing = [what for what, ok in (
            ("before update or delete (per row)", _has_trigger(triggers, "legal_hold_guard", row_bits)),
            ("before truncate", _has_trigger(triggers, "legal_hold_guard", TG_BEFORE | TG_TRUNCATE)),
        ) if not ok]
        if not missing:
            continue
        allowed = _table_allows(name, "legal_hold")
        if allowed is not None:
            yield Finding("info", "legal_hold.trigger", name, f"not covered by legal holds on purpose: {allowed}")
        else:
            yield Finding("error", "legal_hold.trigger", name,
                          "legal holds do not cover it: no private.legal_hold_guard trigger "
                          + " and ".join(missing) + f" (give it legal_hold = {{...}} in {REGISTRY_FILE}, or "
                          "allow.legal_hold = \"<reason>\" when it holds no records)")


@check
def registered_audits_are_attached(conn: psycopg.Connection) -> Iterator[Finding]:
    """A table the registry marks audited = true runs private.audit_row_change after every
    insert, update and delete (per row): the audit trail misses nothing of it."""
    for oid, name, *_rest in _rows(conn, TABLES):
        entry = _registry().get(name)
        if entry is None or not entry.audited:
            continue
        triggers = conn.execute(TRIGGERS_OF, (oid,)).fetchall()
        if not _has_trigger(triggers, "audit_row_change", TG_ROW | TG_INSERT | TG_UPDATE | TG_DELETE,
                            all_columns=True):
            yield Finding("error", "audit.trigger", name,
                          f"{REGISTRY_FILE} says audited = true, but no after insert or update or delete "
                          "trigger (per row, every column) runs private.audit_row_change")


HOLD_ARGS = """
select (pg_catalog.string_to_array(pg_catalog.encode(t.tgargs, 'escape'), '\\000'))[1:t.tgnargs]
from pg_trigger t where t.tgrelid = %s and t.tgname = %s and not t.tgisinternal
"""


@check
def legal_holds_map_rows_as_registered(conn: psycopg.Connection) -> Iterator[Finding]:
    """The row trigger <table>_legal_hold maps rows to holds, and frees columns, exactly as
    the table's legal_hold entry in the registry says (what a hold covers is not edited in
    the database behind the registry's back)."""
    for oid, name, *_rest in _rows(conn, TABLES):
        entry = _registry().get(name)
        if entry is None or entry.legal_hold is None:
            continue
        row = conn.execute(HOLD_ARGS, (oid, f"{entry.relname}_legal_hold")).fetchone()
        expected = [entry.legal_hold.map, *entry.legal_hold.free]
        if row is not None and list(row[0] or []) != expected:
            yield Finding("error", "legal_hold.mapping", name,
                          f"{entry.relname}_legal_hold runs private.legal_hold_guard({', '.join(row[0] or [])}), "
                          f"{REGISTRY_FILE} says ({', '.join(expected)})")


ROUTINES = """
select p.oid::regprocedure::text, n.nspname || '.' || p.proname, p.prosrc, coalesce(p.proargnames, '{}')
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = any(%s) and p.prolang in (select oid from pg_language where lanname in ('sql', 'plpgsql'))
  and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
order by 1
"""

EMAIL_CLAIM = re.compile(r"\bauth\.email\s*\(|request\.jwt\.claim\.email|auth\.jwt\s*\(\s*\)\s*->>?\s*'email'", re.I)


@check
def identity_not_from_email_claim(conn: psycopg.Connection) -> Iterator[Finding]:
    """The JWT email claim is whatever the token says: who an identity is (its email, for
    invitations and owners) comes from auth.users of auth.uid(), confirmed."""
    for sig, _name, src, _args in _rows(conn, ROUTINES):
        if EMAIL_CLAIM.search(_code(src, keep_strings=True)):
            yield Finding("error", "identity.email_claim", sig,
                          "reads the JWT email claim: take the email from auth.users of auth.uid() "
                          "(with email_confirmed_at set) instead")


AS_OF = "p_as_of"
LIFECYCLE_CLOCK = "private.lifecycle_clock"
_CALL = re.compile(r"([A-Za-z_][\w]*)\s*\.\s*([A-Za-z_][\w]*)\s*$|([A-Za-z_][\w]*)\s*$")


def _code(src: str, keep_strings: bool = False) -> str:
    """Routine source without -- comments and (unless keep_strings) the text of string
    literals, scanned in one pass so that an apostrophe in a comment opens no string."""
    def sub(m: re.Match[str]) -> str:
        return "" if m[0].startswith("--") else (m[0] if keep_strings else "''")
    return re.sub(r"'(?:[^']|'')*'|--[^\n]*", sub, src)


def _enclosing_call(code: str, pos: int) -> str | None:
    """The function name whose argument list holds position `pos` as a bare argument, or
    None when the text there is part of an expression (arithmetic, a comparison, ...)."""
    before, after = code[:pos].rstrip(), code[pos + len(AS_OF):].lstrip()
    if not before.endswith(("(", ",")) or not after.startswith((")", ",")):
        return None
    depth, i = 0, len(before) - 1
    while i >= 0:
        ch = before[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                m = _CALL.search(before[:i])
                if not m:
                    return None
                return f"{m[1]}.{m[2]}".lower() if m[1] else (m[3] or "").lower()
            depth -= 1
        i -= 1
    return None


@check
def as_of_goes_through_the_lifecycle_clock(conn: psycopg.Connection) -> Iterator[Finding]:
    """A caller-chosen "as of" must never age data by itself: a routine taking p_as_of may
    only pass it on, as a bare argument, to another routine of the package (which is held to
    the same rule, down to private.lifecycle_clock, which clamps it to the server clock), or
    to coalesce() for a default."""
    for sig, name, src, args in _rows(conn, ROUTINES):
        if AS_OF not in args or name == LIFECYCLE_CLOCK:
            continue
        code = _code(src)
        for m in re.finditer(rf"\b{AS_OF}\b", code):
            call = _enclosing_call(code, m.start())
            if call == "coalesce" or (call and call.split(".")[0] in SCHEMAS and "." in call):
                continue
            yield Finding("error", "clock.as_of", sig,
                          f"uses {AS_OF} in an expression, not as an argument: age data by "
                          f"{LIFECYCLE_CLOCK}({AS_OF}) (or private.lifecycle_cutoffs), which clamps a future "
                          "as-of to the server clock")
            break


def _conjuncts(expr: str) -> list[str]:
    """The top-level AND terms of a deparsed expression, each without enclosing parentheses."""
    def bare(term: str) -> str:
        term = term.strip()
        while term.startswith("(") and term.endswith(")"):
            depth = 0
            for i, c in enumerate(term):
                depth += {"(": 1, ")": -1}.get(c, 0)
                if depth == 0 and i < len(term) - 1:
                    return term
            term = term[1:-1].strip()
        return term
    expr, terms, depth, last = bare(expr), [], 0, 0
    for m in re.finditer(r"[()]|\bAND\b", expr, re.IGNORECASE):
        if m.group(0) in "()":
            depth += 1 if m.group(0) == "(" else -1
        elif depth == 0:
            terms.append(bare(expr[last:m.start()]))
            last = m.end()
    return [*terms, bare(expr[last:])]


def _guards_writes(expr: str) -> bool:
    """The expression refuses a suspended company: a top-level AND term is the read-only
    check (bare, or as the scalar subquery of policies/_read_only.sql), or it is false."""
    return any(re.match(rf"(select\s+)?(private\.)?{WRITABLE_CHECK}\(\)", term, re.IGNORECASE) or term == "false"
               for term in _conjuncts(expr))


@check
def tenant_tables_read_only_when_inactive(conn: psycopg.Connection) -> Iterator[Finding]:
    """A suspended or canceled company writes nothing: on every tenant table each
    insert/update/delete of authenticated meets require_company_writable(). Either a
    restrictive policy for the command calls it (policies/_read_only.sql), or every
    permissive policy admitting the command ANDs it into each of its expressions (profile
    citus: Citus keeps no restrictive policy on its shards, runner/neurant_db/citus_render.py);
    a command no permissive policy admits is denied anyway."""
    role = conn.execute("select oid from pg_roles where rolname = %s", (END_USER_ROLE,)).fetchone()
    if not role:
        return
    for oid, name, *_rest in _tenant_tables(conn):
        policies = conn.execute("""
            select p.polname::text, p.polpermissive, p.polcmd, coalesce(pg_get_expr(p.polqual, p.polrelid), ''),
                   coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
            from pg_policy p
            where p.polrelid = %s
              and (%s = any(p.polroles) or 0 = any(p.polroles))""", (oid, role[0])).fetchall()
        missing = []
        for command, letter in (("insert", "a"), ("update", "w"), ("delete", "d")):
            applying = [row for row in policies if row[2] in (letter, "*")]

            def expressions(qual: str, check: str, command: str = command) -> list[str]:
                return {"insert": [check or qual], "update": [qual, check or qual], "delete": [qual]}[command]
            if any(not permissive and all(_guards_writes(e) for e in expressions(q, c))
                   for _n, permissive, _c, q, c in applying):
                continue
            unguarded = [n for n, permissive, _c, q, c in applying
                         if permissive and not all(_guards_writes(e) for e in expressions(q, c))]
            if unguarded:
                missing.append(f"{command} (admitted by {', '.join(sorted(unguarded))})")
        if missing:
            yield Finding("error", "policy.read_only", name,
                          f"{'; '.join(missing)} without the read-only check for {END_USER_ROLE}: a suspended "
                          f"company could still write. Add the restrictive policies of read_only_when_inactive "
                          f"(policies/_read_only.sql), or, where no policy may be restrictive (profile citus), "
                          f"AND private.{WRITABLE_CHECK}() into each of those policies")


@check
def definer_writes_check_writable(conn: psycopg.Connection) -> Iterator[Finding]:
    """A security definer function members call runs past RLS, so the restrictive
    read-only policies do not stop its writes: it must call require_company_writable
    itself, or say in its COMMENT why not (doctor: allow definer.read_only <reason>)."""
    writes = re.compile(r"\b(insert\s+into|update\s+[\w.]+(\s+(as\s+)?\w+)?\s+set|delete\s+from)\b",
                        re.I)
    if not conn.execute("select 1 from pg_roles where rolname = %s", (END_USER_ROLE,)).fetchone():
        return
    for sig, src, note in _rows(conn, """
        select p.oid::regprocedure::text, p.prosrc, coalesce(obj_description(p.oid, 'pg_proc'), '')
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and p.prosecdef and p.prorettype <> 'trigger'::regtype
          and has_function_privilege(%s, p.oid, 'execute')
          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
        order by 1""", END_USER_ROLE):
        if not writes.search(src) or WRITABLE_CHECK + "(" in src:
            continue
        allowed = allowed_reason("definer.read_only", note)
        if allowed is not None:
            yield Finding("info", "definer.read_only", sig, f"writes without the read-only check on purpose: {allowed}")
        else:
            yield Finding("error", "definer.read_only", sig,
                          f"security definer function writes past RLS without calling "
                          f"private.{WRITABLE_CHECK}(company): a suspended company could still write")


# --- trusted code never relies on what a session can create (issue 9) -------------------
# Trusted: security definer functions, procedures (the jobs), and functions owned by a role
# that bypasses RLS which service_role may execute (the backend calls them; triggers too).
TRUSTED = """
select p.oid::regprocedure::text, p.prokind, l.lanname, p.prosrc,
       coalesce(array_to_string(p.proconfig, ','), ''),
       coalesce(p.proargnames, '{}') || array(select x from pg_trigger t,  -- transition tables
                                              unnest(array[t.tgoldtable, t.tgnewtable]) x
                                              where t.tgfoid = p.oid and x is not null)
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
join pg_language l on l.oid = p.prolang join pg_roles o on o.oid = p.proowner
where n.nspname = any(%s) and l.lanname in ('sql', 'plpgsql')
  and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
  and (p.prosecdef or p.prokind = 'p'
       or ((o.rolsuper or o.rolbypassrls)
           and coalesce(has_function_privilege((select r.oid from pg_roles r where r.rolname = 'service_role'),
                                               p.oid, 'execute'), false)))
order by 1
"""
_TEMP_USE = re.compile(r"\bpg_temp\b|\bcreate\s+(?:(?:global|local)\s+)?(?:temp|temporary)\b", re.I)
_RELATION_AFTER = re.compile(
    r"\b(from|join|update|into|table|truncate|using)\s+(?:only\s+)?([a-z_][a-z0-9_$]*)\b(?!\s*[.(])",
    re.I)
_NOT_RELATIONS = {
    "select", "lateral", "only", "strict", "of", "set", "values", "none", "nowait", "errcode",
    "message", "hint", "detail", "column", "constraint", "schema", "table", "unnest", "new", "old",
    "excluded", "found", "true", "false", "null", "current_date", "current_timestamp", "now",
}
_CTE = re.compile(r"\b([a-z_][a-z0-9_]*)\s+as\s+(?:not\s+)?(?:materialized\s+)?\(", re.I)
_LOOP_VAR = re.compile(r"\b(?:for|foreach)\s+([a-z_][a-z0-9_]*)\s+in\b", re.I)
_DECLARE = re.compile(r"\bdeclare\b(.*?)\bbegin\b", re.I | re.S)
_DECLARED = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s+(?:constant\s+)?([a-z_][a-z0-9_.]*)", re.I | re.M)
_CAST = re.compile(r"::\s*([a-z_][a-z0-9_]*)\b(?!\s*\.)", re.I)
# Type names the grammar maps to pg_catalog itself (keywords): never looked up on the path.
_KEYWORD_TYPES = {
    "int", "integer", "smallint", "bigint", "real", "float", "double", "numeric", "decimal",
    "dec", "boolean", "bit", "char", "character", "varchar", "nchar", "national", "timestamp",
    "time", "interval", "record", "trigger", "void",
}


def unqualified_relations(src: str, arg_names: list[str]) -> list[str]:
    code = code_only(src)
    local = {n.lower() for n in arg_names if n}
    local |= {m.group(1).lower() for m in _CTE.finditer(code)}
    local |= {m.group(1).lower() for m in _LOOP_VAR.finditer(code)}
    for block in _DECLARE.finditer(code):
        local |= {m.group(1).lower() for m in _DECLARED.finditer(block.group(1))}
    names = {m.group(2).lower() for m in _RELATION_AFTER.finditer(code)}
    return sorted(n for n in names - local - _NOT_RELATIONS
                  if not n.startswith(("v_", "p_")))


def unqualified_types(src: str) -> list[str]:
    code = code_only(src)
    names = {m.group(1).lower() for m in _CAST.finditer(code)}
    for block in _DECLARE.finditer(code):
        for m in _DECLARED.finditer(block.group(1)):
            if "." not in m.group(2) and m.group(2).lower() not in ("alias", "cursor"):
                names.add(m.group(2).lower())
    return sorted(n for n in names if n not in _KEYWORD_TYPES)


@check
def trusted_code_ignores_session_objects(conn: psycopg.Connection) -> Iterator[Finding]:
    for sig, kind, _lang, src, config, arg_names in _rows(conn, TRUSTED):
        what = "procedure" if kind == "p" else "trusted function"
        if _TEMP_USE.search(code_only(src)):
            yield Finding("error", "trusted.temp", sig,
                          f"{what} uses pg_temp or creates a temp object: an end user sharing the "
                          "session may have planted one (with a trigger) first")
        relations = unqualified_relations(src, list(arg_names))
        if relations:
            yield Finding("error", "trusted.unqualified", sig,
                          f"{what} names relations without a schema ({', '.join(relations)}): "
                          "pg_temp is searched for them, first unless the path lists it last")
        if not re.search(r"(^|,)search_path=(.*, )?pg_temp(,|$)", config):
            types = unqualified_types(src)
            if types:
                yield Finding("error", "trusted.unqualified", sig,
                              f"{what} names types without a schema ({', '.join(types)}) and its "
                              "search_path does not list pg_temp last: a temp domain of that name "
                              "would shadow them (qualify them, pg_catalog.text, or set "
                              "search_path = pg_catalog, pg_temp)")


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


@check
def indexes_are_valid(conn: psycopg.Connection) -> Iterator[Finding]:
    """An index pg_index marks invalid: a failed CREATE INDEX / REINDEX CONCURRENTLY of a
    no-transaction migration (online.py) left it; it serves no query, slows every write."""
    for index in invalid_indexes(conn):
        yield Finding("error", "index.invalid", index.qualified, index.describe())


PROFILES = ("vanilla", "supabase", "citus")


def run_checks(conn: psycopg.Connection, profile: str = "vanilla") -> list[Finding]:
    """Every check; with profile citus also the Citus rules (doctor_citus.py), which replace
    policy.initplan (Citus refuses the (select f()) it asks for)."""
    skipped = {policy_helpers_once_per_statement} if profile == "citus" else set()
    findings: list[Finding] = []
    for fn in CHECKS:
        if fn not in skipped:
            findings.extend(fn(conn))
    findings.extend(run_grant_checks(conn, SCHEMAS, _registry()))
    findings.extend(run_session_checks(conn))  # what a hostile session could bypass (issue 20)
    if profile == "citus":
        findings.extend(run_citus_checks(conn))
    return findings
