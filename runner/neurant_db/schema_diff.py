"""The live schema against the schema its applied migrations define (doctor's
`schema.missing`, `schema.differs`, `schema.extra`; baseline's refusal).

The ledger says which migrations ran; only the catalog says whether their objects are
there as they defined them. The expectation is not a committed file but a reference
build: the migrations the ledger lists (applied or baselined), rendered with the settings
the ledger recorded, are applied to a scratch database (a random name on the target's
server, or on the server `--reference-url` names; dropped afterwards), and both catalogs
are reduced to one definition per object (`definitions`). The target itself is only read,
so doctor stays read-only on production. See docs/doctor.md, "The schema the migrations
define".

Compared, in the schemas the migrations own (public, private, archive; auth unless the
profile is supabase, where auth is Supabase's): tables, views and sequences (columns
with types, nullability and defaults, row level security), constraints, indexes,
triggers, policies (command, roles, expressions), functions and procedures (their full
definition), enum types, and the privileges on all of them. Owners and grantors are
left out (a non-superuser deploy owns the objects under another role), and so are grants
to a role that owns the objects on either side, extension members and comments.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from .database import DatabaseTarget
from .doctor_finding import Finding
from .errors import BadArgument, NeurantError
from .ledger import ledger_row_count, read_ledger
from .migrate import baseline, migrate
from .render import Migration, render_all
from .scratch import scratch_database
from .settings import Settings

OWNED_SCHEMAS = ("public", "private", "archive", "auth")
NOT_OURS = {"supabase": ("auth",)}  # schemas a profile finds on the server, not created by us
REFERENCE_PREFIX = "neurant_reference"
EXTRA_WARNING_KINDS = ("index",)
KIND_ORDER = ("schema", "type", "table", "view", "sequence", "function", "procedure", "constraint", "index",
              "trigger", "policy", "grant", "column grant")
GRANTS = ("grant", "column grant")  # privileges of an object: reported only when the object itself is there


def _privileges(acl: str, owner: str, kind: str) -> str:
    """SQL: the privileges of an ACL other than the owner's own, grantor left out ('role:PRIVILEGE')."""
    return f"""coalesce((select string_agg(case when a.grantee = 0 then 'public' else a.grantee::regrole::text end
                                   || ':' || a.privilege_type, ', ' order by a.grantee::regrole::text,
                                   a.privilege_type)
                 from aclexplode(coalesce({acl}, acldefault('{kind}'::"char", {owner}))) a
                 where a.grantee <> {owner}), 'none')"""


DEFINITIONS = f"""
with ns as (
  select oid, nspname from pg_namespace where nspname = any(%(schemas)s)
), fn as (
  select f.oid, f.prokind, f.proacl, f.proowner,
         format('%%I.%%I(%%s)', ns.nspname, f.proname, pg_get_function_identity_arguments(f.oid)) as name
  from pg_proc f join ns on ns.oid = f.pronamespace
  where not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                    and d.objid = f.oid and d.deptype = 'e')
), rel as (
  select c.oid, c.relkind, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity,
         format('%%I.%%I', ns.nspname, c.relname) as name
  from pg_class c join ns on ns.oid = c.relnamespace
  where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
    and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                    and d.objid = c.oid and d.deptype = 'e')
), acl as (
  -- privileges other than the owner's own, grantor left out: 'role:PRIVILEGE[*]'
  select r.oid, string_agg(p.item, ', ' order by p.item) as privileges
  from rel r, lateral (
    select case when a.grantee = 0 then 'public' else a.grantee::regrole::text end || ':' || a.privilege_type
           || case when a.is_grantable then '*' else '' end as item
    from aclexplode(coalesce(r.relacl, acldefault(case when r.relkind = 'S' then 's' else 'r' end::"char",
                                                   r.relowner))) a
    where a.grantee <> r.relowner) p
  group by r.oid
)
select 'schema', nspname::text, 'exists' from ns  -- text: a `name` here would type (truncate) every name below
union all
select case r.relkind when 'v' then 'view' when 'm' then 'view' when 'S' then 'sequence' else 'table' end,
       r.name,
       concat_ws('; ',
         'kind ' || r.relkind::text,
         case when r.relkind in ('v', 'm') then pg_get_viewdef(r.oid) end,
         case when r.relkind in ('r', 'p') then
           'row level security ' || case when r.relrowsecurity then 'on' else 'off' end
           || case when r.relforcerowsecurity then ', forced' else '' end end,
         (select string_agg(format('%%I %%s%%s%%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                   case when a.attnotnull then ' not null' else '' end,
                                   coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')),
                            ', ' order by a.attname)
          from pg_attribute a
          left join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
          where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped and r.relkind <> 'S'))
from rel r
union all
select 'grant', r.name, coalesce(acl.privileges, 'none')
from rel r left join acl on acl.oid = r.oid
union all
select 'column grant', r.name || '.' || quote_ident(a.attname),
       string_agg(case when x.grantee = 0 then 'public' else x.grantee::regrole::text end || ':' || x.privilege_type,
                  ', ' order by x.grantee::regrole::text, x.privilege_type)
from rel r join pg_attribute a on a.attrelid = r.oid and a.attacl is not null and not a.attisdropped,
     aclexplode(a.attacl) x
where x.grantee <> r.relowner
group by r.name, a.attname
union all
select 'constraint', r.name || '.' || quote_ident(k.conname), pg_get_constraintdef(k.oid)
from rel r join pg_constraint k on k.conrelid = r.oid
where k.contype <> 'n'  -- PostgreSQL 18's not-null constraints: the column says not null
union all
select 'index', format('%%I.%%I', ns.nspname, i.relname), pg_get_indexdef(i.oid)
from pg_index x join pg_class i on i.oid = x.indexrelid join ns on ns.oid = i.relnamespace
where x.indrelid in (select oid from rel)
union all
select 'trigger', r.name || '.' || quote_ident(t.tgname), pg_get_triggerdef(t.oid)
from rel r join pg_trigger t on t.tgrelid = r.oid and not t.tgisinternal
union all
select 'policy', r.name || '.' || quote_ident(p.polname),
       concat_ws('; ', case when p.polpermissive then 'permissive' else 'restrictive' end,
                 'for ' || p.polcmd::text,
                 'to ' || (select string_agg(case when o = 0 then 'public' else o::regrole::text end, ', '
                                           order by o::regrole::text)
                           from unnest(p.polroles) o),
                 'using ' || pg_get_expr(p.polqual, p.polrelid),
                 'with check ' || pg_get_expr(p.polwithcheck, p.polrelid))
from rel r join pg_policy p on p.polrelid = r.oid
union all
select case f.prokind when 'p' then 'procedure' else 'function' end, f.name,
       case when f.prokind in ('f', 'p', 'w') then pg_get_functiondef(f.oid) else f.prokind::text end
from fn f
union all
select 'grant', f.name, {_privileges("f.proacl", "f.proowner", "f")}
from fn f
union all
select 'type', format('%%I.%%I', ns.nspname, t.typname),
       'enum ' || (select string_agg(quote_literal(e.enumlabel), ', ' order by e.enumsortorder)
                   from pg_enum e where e.enumtypid = t.oid)
from pg_type t join ns on ns.oid = t.typnamespace
where t.typtype = 'e'
  and not exists (select 1 from pg_depend d where d.classid = 'pg_type'::regclass
                  and d.objid = t.oid and d.deptype = 'e')
union all
select 'grant', 'schema ' || ns.nspname, {_privileges("n.nspacl", "n.nspowner", "n")}
from pg_namespace n join ns on ns.oid = n.oid
"""

Definitions = dict[tuple[str, str], str]


class ReferenceUnavailable(NeurantError):
    """The reference schema could not be built (no CREATEDB, an extension missing...)."""


def compared_schemas(profile: str) -> tuple[str, ...]:
    return tuple(s for s in OWNED_SCHEMAS if s not in NOT_OURS.get(profile, ()))


def definitions(conn: psycopg.Connection, schemas: Iterable[str]) -> Definitions:
    """One definition per object: {(kind, qualified name): definition text}."""
    rows = conn.execute(DEFINITIONS, {"schemas": list(schemas)}).fetchall()
    return {(kind, name): text for kind, name, text in rows}


OWNERS = """
select distinct o.owner::regrole::text from (
  select c.relowner as owner from pg_class c where c.relnamespace::regnamespace::text = any(%(schemas)s)
  union select p.proowner from pg_proc p where p.pronamespace::regnamespace::text = any(%(schemas)s)
  union select n.nspowner from pg_namespace n where n.nspname = any(%(schemas)s)) o
"""


def object_owners(conn: psycopg.Connection, schemas: Iterable[str]) -> frozenset[str]:
    """The roles that own objects in `schemas`."""
    return frozenset(r[0] for r in conn.execute(OWNERS, {"schemas": list(schemas)}).fetchall())


def without_grants_to(defs: Definitions, roles: frozenset[str]) -> Definitions:
    """`defs` with the privileges granted to `roles` left out of every grant. Used with the roles
    that own the objects in the live database or in the reference: a grant to an owner changes
    nothing it may do (on Supabase the reference, built by supabase_admin, grants postgres what
    postgres holds as the owner of the live objects)."""
    def kept(text: str) -> str:
        items = [i for i in text.split(", ") if i.split(":", 1)[0] not in roles]
        return ", ".join(items) or "none"
    return {key: kept(text) if key[0] in GRANTS and text != "none" else text for key, text in defs.items()}


@dataclass(frozen=True)
class Applied:
    """What the ledger says was applied: the versions, and the settings it recorded."""

    versions: frozenset[int]
    settings: Settings


def applied(conn: psycopg.Connection, fallback: Settings) -> Applied:
    ledger = read_ledger(conn)
    recorded = next((row.settings for _, row in sorted(ledger.items(), reverse=True) if row.settings), None)
    settings = fallback
    if recorded:
        settings = Settings(**{**fallback.template_context(),
                               **{k: v for k, v in recorded.items() if k in fallback.template_context()}})
    return Applied(frozenset(ledger), settings.validate())


def reference_definitions(server: DatabaseTarget, migrations: list[Migration], settings: Settings,
                          schemas: Iterable[str]) -> tuple[Definitions, frozenset[str]]:
    """Apply `migrations` to a scratch database of `server`; its definitions and object owners."""
    why = ("the schema check builds the migrations' schema in a scratch database: use a role with "
           "CREATEDB, or --reference-url naming a server where it may (a local one: neurant-db server start)")
    try:
        with scratch_database(server, REFERENCE_PREFIX, purpose="reference", why=why,
                              error=ReferenceUnavailable) as scratch:
            try:  # silent: a migration's own output (citus's distribution step) is not doctor's
                with contextlib.redirect_stdout(io.StringIO()):
                    migrate(scratch, migrations, settings)
            except NeurantError as exc:
                raise ReferenceUnavailable(f"the reference build failed: {exc.message}", hint=why) from None
            with scratch.connect(purpose="reference") as conn:
                return definitions(conn, schemas), object_owners(conn, schemas)
    except (psycopg.Error, OSError) as exc:
        raise ReferenceUnavailable(f"the reference build failed: {exc}", hint=why) from None


def first_difference(live: str, expected: str) -> str:
    """The first line or list item where `live` and `expected` differ, both sides shown."""
    def parts(text: str) -> list[str]:
        return [p.strip() for p in text.replace(", ", "\n").replace("; ", "\n").splitlines() if p.strip()]
    for line in difflib.unified_diff(parts(expected), parts(live), n=0, lineterm=""):
        if line[:1] in "+-" and not line.startswith(("+++", "---")):
            return ("has " if line[0] == "+" else "lacks ") + repr(line[1:])[:160]
    return "differs"


def _order(key: tuple[str, str]) -> tuple[int, str]:
    return (KIND_ORDER.index(key[0]) if key[0] in KIND_ORDER else len(KIND_ORDER), key[1])


def compare(live: Definitions, expected: Definitions) -> list[Finding]:
    findings: list[Finding] = []
    fix_missing = "re-run the migration that defines it (rollback and migrate), or restore it from docs/schema.sql"
    for key in sorted(expected, key=_order):
        kind, name = key
        if key not in live:
            if kind in GRANTS:
                continue  # the object itself is missing: reported once
            findings.append(Finding("error", "schema.missing", f"{kind} {name}",
                                    "defined by the applied migrations but absent from the database",
                                    hint=fix_missing[0].upper() + fix_missing[1:] + "."))
        elif live[key] != expected[key]:
            how = first_difference(live[key], expected[key])
            findings.append(Finding("error", "schema.differs", f"{kind} {name}",
                                    f"not as the applied migrations define it: {how}",
                                    hint="Undo the change made outside the migrations, or make it a migration."))
    for key in sorted(set(live) - set(expected), key=_order):
        kind, name = key
        if kind in GRANTS and not any(name.startswith(other) for (k, other) in expected if k == "grant"):
            continue  # the extra object is reported once
        findings.append(Finding("warning" if kind in EXTRA_WARNING_KINDS else "error", "schema.extra",
                                f"{kind} {name}", "not defined by any applied migration (created outside them)",
                                hint="Drop it, or add it with a migration."))
    return findings


def check_schema(target: DatabaseTarget, fallback: Settings, *, reference_server: DatabaseTarget | None = None,
                 render: Callable[[Settings], list[Migration]] = render_all) -> list[Finding]:
    """Doctor's schema check: findings for the live schema of `target` against the reference
    build of its applied migrations. A reference that cannot be built is one warning."""
    with target.connect(purpose="doctor") as conn:
        done = applied(conn, fallback)
        if not done.versions:
            return []  # nothing applied: schema.migrations says so
        if conn.execute("select exists (select 1 from pg_extension where extname = 'citus')").fetchone() == (True,):
            return [Finding("info", "schema.reference", "neurant_meta.schema_migrations",
                            "not compared on a Citus cluster: distribution adds Citus's own objects a plain "
                            "reference build does not have (the Citus rules still run)")]
        schemas = compared_schemas(done.settings.profile)
        live = definitions(conn, schemas)
        live_owners = object_owners(conn, schemas)
    chosen = [m for m in render(done.settings) if m.version in done.versions]
    try:
        expected, reference_owners = reference_definitions(reference_server or target, chosen, done.settings, schemas)
    except ReferenceUnavailable as exc:
        return [Finding("warning", "schema.reference", "neurant_meta.schema_migrations",
                        f"cannot compare the schema with its migrations: {exc.message}", hint=exc.hint or "")]
    owners = live_owners | reference_owners
    return compare(without_grants_to(live, owners), without_grants_to(expected, owners))


def missing_objects(target: DatabaseTarget, migrations: list[Migration], settings: Settings, *,
                    reference_server: DatabaseTarget | None = None) -> list[str]:
    """Objects the `migrations` define that `target` lacks (baseline refuses them). Raises
    ReferenceUnavailable when the reference cannot be built."""
    schemas = compared_schemas(settings.profile)
    with target.connect(purpose="baseline") as conn:
        live = definitions(conn, schemas)
    expected, _ = reference_definitions(reference_server or target, migrations, settings, schemas)
    return [f"{kind} {name}" for kind, name in sorted(set(expected) - set(live), key=_order) if kind not in GRANTS]


class SchemaAbsent(BadArgument):
    """baseline: the objects of the migrations to mark applied are not in the database."""


def checked_baseline(target: DatabaseTarget, migrations: list[Migration], settings: Settings, *, version: int,
                     reason: str, lock_timeout_s: float = 30.0, reference_server: DatabaseTarget | None = None,
                     check: bool = True) -> list[Migration]:
    """`migrate.baseline`, after making sure the database holds every object the migrations up to
    `version` define (`check=False`: skip that, for a database the reference cannot be built for)."""
    with target.connect(purpose="baseline") as conn:
        has_ledger = ledger_row_count(conn) > 0
    if check and not has_ledger and version in {m.version for m in migrations}:  # else baseline says why not
        chosen = [m for m in migrations if m.version <= version]
        absent = missing_objects(target, chosen, settings, reference_server=reference_server)
        if absent:
            raise SchemaAbsent(
                f"baseline {version:04d} refused: {len(absent)} object(s) these migrations define are not in "
                f"the database, first {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}",
                hint="baseline adopts a database that already holds the schema: migrate an empty database "
                "instead, or baseline the version its objects match")
    return baseline(target, migrations, settings, version=version, reason=reason, lock_timeout_s=lock_timeout_s)
