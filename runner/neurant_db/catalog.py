"""A read of the live catalog (pg_catalog only) into plain data for the reference docs
and the ER diagram: schemas, tables, columns, keys, indexes, triggers, grants,
policies, enum types and functions of the documented schemas.

Extension members (pgvector's functions, operators...) are left out: they belong
to the extension, not to this package. Names are read with search_path set to
pg_catalog, so every expression and type outside pg_catalog comes out
schema-qualified the same way on every run. Everything is sorted by name (columns
by position), so two reads of the same schema give the same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

DOCUMENTED_SCHEMAS = ("public", "private", "archive", "auth")

TABLE_PRIVILEGES = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "D": "TRUNCATE",
                    "x": "REFERENCES", "t": "TRIGGER", "m": "MAINTAIN"}
PRIVILEGE_ORDER = list(TABLE_PRIVILEGES.values())
POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}
PROKIND = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}
RELKIND = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view",
           "f": "foreign table"}
CONSTRAINT_KIND = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check",
                   "x": "exclusion", "t": "constraint trigger", "n": "not null"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    default: str | None
    comment: str | None


@dataclass(frozen=True)
class Constraint:
    name: str
    kind: str  # p u f c x
    definition: str
    comment: str | None
    columns: tuple[str, ...] = ()
    references: str | None = None  # schema.table of a foreign key's target


@dataclass(frozen=True)
class Index:
    name: str
    definition: str
    comment: str | None


@dataclass(frozen=True)
class Trigger:
    name: str
    definition: str
    comment: str | None


@dataclass(frozen=True)
class Policy:
    name: str
    command: str
    permissive: bool
    roles: tuple[str, ...]
    using: str | None
    with_check: str | None
    comment: str | None


@dataclass(frozen=True)
class Grant:
    """What one role may do on a table: whole-table privileges and column-listed ones."""

    role: str
    table_privileges: tuple[str, ...]
    column_privileges: tuple[tuple[str, tuple[str, ...]], ...]  # (privilege, columns)
    all_privileges: bool


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: str
    comment: str | None
    rls_enabled: bool
    rls_forced: bool
    columns: tuple[Column, ...]
    constraints: tuple[Constraint, ...]
    indexes: tuple[Index, ...]
    triggers: tuple[Trigger, ...]
    grants: tuple[Grant, ...]
    policies: tuple[Policy, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def primary_key(self) -> tuple[str, ...]:
        return next((c.columns for c in self.constraints if c.kind == "p"), ())

    @property
    def foreign_keys(self) -> tuple[Constraint, ...]:
        return tuple(c for c in self.constraints if c.kind == "f")


@dataclass(frozen=True)
class EnumType:
    schema: str
    name: str
    values: tuple[str, ...]
    comment: str | None


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    arguments: str
    kind: str
    returns: str | None
    language: str
    volatility: str
    security_definer: bool
    config: tuple[str, ...]
    executors: tuple[str, ...]
    comment: str | None

    @property
    def signature(self) -> str:
        return f"{self.schema}.{self.name}({self.arguments})"


@dataclass(frozen=True)
class Schema:
    name: str
    comment: str | None
    usage: tuple[str, ...]
    tables: tuple[Table, ...] = ()
    enums: tuple[EnumType, ...] = ()
    functions: tuple[Function, ...] = ()


@dataclass(frozen=True)
class Catalog:
    server_major: int
    extensions: tuple[tuple[str, str, str], ...]  # name, schema, version
    schemas: tuple[Schema, ...] = field(default_factory=tuple)

    def tables(self) -> list[Table]:
        return [t for s in self.schemas for t in s.tables]

    def functions(self) -> list[Function]:
        return [f for s in self.schemas for f in s.functions]


NOT_EXTENSION_MEMBER = "not exists (select 1 from pg_depend d where d.objid = {oid} and d.deptype = 'e')"


def _rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def _role_name(oid: int, names: dict[int, str]) -> str:
    return "PUBLIC" if oid == 0 else names.get(oid, str(oid))


def read_catalog(conn: psycopg.Connection, schemas: tuple[str, ...] = DOCUMENTED_SCHEMAS) -> Catalog:
    """Read the documented schemas that exist in the connected database."""
    conn.execute("set search_path = pg_catalog")
    major = int(_rows(conn, "select current_setting('server_version_num')::int / 10000")[0][0])
    roles = {oid: name for oid, name in _rows(conn, "select oid::int, rolname from pg_roles")}
    extensions = tuple((str(n), str(s), str(v)) for n, s, v in _rows(conn, """
        select e.extname, n.nspname, e.extversion from pg_extension e
        join pg_namespace n on n.oid = e.extnamespace where e.extname <> 'plpgsql' order by 1"""))
    found = []
    for oid, name, comment, owner in _rows(conn, """
            select n.oid, n.nspname, obj_description(n.oid, 'pg_namespace'), n.nspowner::int
            from pg_namespace n where n.nspname = any(%s) order by array_position(%s, n.nspname::text)""",
            list(schemas), list(schemas)):
        usage = _schema_usage(conn, oid, owner, roles)
        found.append(Schema(name, comment, usage, tables=_tables(conn, oid, roles),
                            enums=_enums(conn, oid), functions=_functions(conn, oid, roles)))
    return Catalog(major, extensions, tuple(found))


def _schema_usage(conn: psycopg.Connection, oid: int, owner: int, roles: dict[int, str]) -> tuple[str, ...]:
    rows = _rows(conn, """
        select distinct a.grantee::int from pg_namespace n,
               aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
        where n.oid = %s and a.privilege_type = 'USAGE' and a.grantee <> %s""", oid, owner)
    return tuple(sorted(_role_name(r[0], roles) for r in rows))


def _tables(conn: psycopg.Connection, nsp: int, roles: dict[int, str]) -> tuple[Table, ...]:
    out = []
    for oid, schema, name, kind, comment, rls, force, owner in _rows(conn, f"""
            select c.oid, n.nspname, c.relname, c.relkind::text, obj_description(c.oid, 'pg_class'),
                   c.relrowsecurity, c.relforcerowsecurity, c.relowner::int
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.relnamespace = %s and c.relkind in ('r', 'p', 'v', 'm', 'f') and not c.relispartition
              and {NOT_EXTENSION_MEMBER.format(oid="c.oid")}
            order by c.relname""", nsp):
        out.append(Table(schema, name, RELKIND[kind], comment, rls, force,
                         columns=_columns(conn, oid), constraints=_constraints(conn, oid),
                         indexes=_indexes(conn, oid), triggers=_triggers(conn, oid),
                         grants=_grants(conn, oid, owner, roles), policies=_policies(conn, oid, roles)))
    return tuple(out)


def _columns(conn: psycopg.Connection, rel: int) -> tuple[Column, ...]:
    return tuple(Column(*r) for r in _rows(conn, """
        select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               case when a.attgenerated <> '' then 'generated always as ('
                         || pg_get_expr(d.adbin, d.adrelid) || ') stored'
                    when a.attidentity <> '' then 'generated '
                         || case a.attidentity when 'a' then 'always' else 'by default' end || ' as identity'
                    else pg_get_expr(d.adbin, d.adrelid) end,
               col_description(a.attrelid, a.attnum)
        from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where a.attrelid = %s and a.attnum > 0 and not a.attisdropped order by a.attnum""", rel))


def _constraints(conn: psycopg.Connection, rel: int) -> tuple[Constraint, ...]:
    out = []
    for name, kind, definition, comment, columns, target in _rows(conn, """
            select k.conname, k.contype::text, pg_get_constraintdef(k.oid), obj_description(k.oid, 'pg_constraint'),
                   array(select a.attname from unnest(k.conkey) with ordinality u(num, pos)
                         join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.num order by u.pos),
                   case when k.contype = 'f' then
                        (select n.nspname || '.' || c.relname from pg_class c
                         join pg_namespace n on n.oid = c.relnamespace where c.oid = k.confrelid) end
            from pg_constraint k where k.conrelid = %s and k.contype in ('p', 'u', 'f', 'c', 'x')
            order by case k.contype when 'p' then 0 when 'u' then 1 when 'f' then 2 else 3 end, k.conname""",
            rel):
        out.append(Constraint(name, kind, definition, comment, tuple(columns), target))
    return tuple(out)


def _indexes(conn: psycopg.Connection, rel: int) -> tuple[Index, ...]:
    """Indexes that do not back a constraint (those are listed with the constraints)."""
    return tuple(Index(*r) for r in _rows(conn, """
        select c.relname, pg_get_indexdef(i.indexrelid), obj_description(c.oid, 'pg_class')
        from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = %s and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid
                                              and k.conrelid = i.indrelid)
        order by c.relname""", rel))


def _triggers(conn: psycopg.Connection, rel: int) -> tuple[Trigger, ...]:
    return tuple(Trigger(*r) for r in _rows(conn, """
        select t.tgname, pg_get_triggerdef(t.oid), obj_description(t.oid, 'pg_trigger')
        from pg_trigger t where t.tgrelid = %s and not t.tgisinternal order by t.tgname""", rel))


def _grants(conn: psycopg.Connection, rel: int, owner: int, roles: dict[int, str]) -> tuple[Grant, ...]:
    table: dict[int, set[str]] = {}
    for grantee, privilege in _rows(conn, """
            select distinct a.grantee::int, a.privilege_type from pg_class c,
                   aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
            where c.oid = %s and a.grantee <> c.relowner""", rel):
        table.setdefault(grantee, set()).add(privilege)
    every = {r[0] for r in _rows(conn, """
        select distinct a.privilege_type from aclexplode(acldefault('r', %s::oid)) a""", owner)}
    columns: dict[int, dict[str, list[str]]] = {}
    for grantee, privilege, column in _rows(conn, """
            select a.grantee::int, a.privilege_type, att.attname from pg_attribute att,
                   aclexplode(att.attacl) a
            where att.attrelid = %s and att.attnum > 0 and not att.attisdropped and att.attacl is not null
              and a.grantee <> %s
            order by att.attnum""", rel, owner):
        columns.setdefault(grantee, {}).setdefault(privilege, []).append(column)
    out = []
    for grantee in set(table) | set(columns):
        whole = table.get(grantee, set())
        cols = columns.get(grantee, {})
        listed = tuple((p, tuple(cols[p])) for p in _ordered(cols) if p not in whole)
        out.append(Grant(_role_name(grantee, roles), tuple(_ordered(whole)), listed,
                         all_privileges=bool(every) and whole >= every))
    return tuple(sorted(out, key=lambda g: (g.role != "PUBLIC", g.role)))


def _ordered(privileges: set[str] | dict[str, Any]) -> list[str]:
    rank = {p: i for i, p in enumerate(PRIVILEGE_ORDER)}
    return sorted(privileges, key=lambda p: (rank.get(p, len(rank)), p))


def _policies(conn: psycopg.Connection, rel: int, roles: dict[int, str]) -> tuple[Policy, ...]:
    out = []
    for name, cmd, permissive, role_oids, using, check, comment in _rows(conn, """
            select p.polname, p.polcmd::text, p.polpermissive, p.polroles::int[],
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
                   obj_description(p.oid, 'pg_policy')
            from pg_policy p where p.polrelid = %s order by p.polname""", rel):
        names = tuple(sorted(_role_name(r, roles) for r in role_oids))
        out.append(Policy(name, POLICY_COMMANDS.get(cmd, cmd), permissive, names, using, check, comment))
    return tuple(out)


def _enums(conn: psycopg.Connection, nsp: int) -> tuple[EnumType, ...]:
    return tuple(EnumType(s, n, tuple(v), c) for s, n, v, c in _rows(conn, f"""
        select n.nspname, t.typname,
               array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid order by e.enumsortorder),
               obj_description(t.oid, 'pg_type')
        from pg_type t join pg_namespace n on n.oid = t.typnamespace
        where t.typnamespace = %s and t.typtype = 'e' and {NOT_EXTENSION_MEMBER.format(oid="t.oid")}
        order by t.typname""", nsp))


def _functions(conn: psycopg.Connection, nsp: int, roles: dict[int, str]) -> tuple[Function, ...]:
    out = []
    for row in _rows(conn, f"""
            select p.oid, n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind::text,
                   case when p.prokind = 'p' then null else pg_get_function_result(p.oid) end,
                   l.lanname, p.provolatile::text, p.prosecdef, coalesce(p.proconfig, '{{}}'),
                   obj_description(p.oid, 'pg_proc'), p.proowner::int
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            join pg_language l on l.oid = p.prolang
            where p.pronamespace = %s and {NOT_EXTENSION_MEMBER.format(oid="p.oid")}
            order by p.proname, pg_get_function_identity_arguments(p.oid)""", nsp):
        oid, schema, name, args, kind, returns, lang, vol, definer, config, comment, owner = row
        executors = _rows(conn, """
            select distinct a.grantee::int from pg_proc p,
                   aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
            where p.oid = %s and a.privilege_type = 'EXECUTE' and a.grantee <> %s""", oid, owner)
        who = tuple(sorted((_role_name(r[0], roles) for r in executors), key=lambda r: (r != "PUBLIC", r)))
        out.append(Function(schema, name, args, PROKIND.get(kind, kind), returns, lang,
                            VOLATILITY.get(vol, vol), definer, tuple(config), who, comment))
    return tuple(out)
