"""Pre-flight: can this server and this role take the pending migrations? Checked before the
first one is applied, every problem reported at once with what to do about it.

Without it a server that cannot finish (no pgvector, a role that may not create what the
migrations create) is left with the first migrations applied (cluster roles, the auth
schema) and a failure further on. What is needed is read from the rendered SQL of the
pending migrations themselves (the extensions, schemas and roles they create, the schemas
they create objects in or comment on), so the checks follow the migrations, not a list
kept here; the rest is the package's contract: PostgreSQL 15+, an owner that bypasses row
level security, and the profile matching the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .database import DatabaseTarget
from .errors import NeurantError
from .ledger import META_SCHEMA, read_ledger
from .render import Migration
from .role_settings import foreign_settings, roles_with_password
from .settings import Settings

MIN_SERVER_VERSION = 150000
CLIENT_ROLES = ("anon", "authenticated", "service_role")
SUPABASE_ROLES = ("supabase_admin", "supabase_auth_admin")
# The columns of auth.users the RPCs read (the auth service adds email_confirmed_at and
# raw_user_meta_data with its own migrations).
AUTH_USER_COLUMNS = ("email", "email_confirmed_at", "raw_user_meta_data")

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_CREATE_EXTENSION = re.compile(
    r"\bcreate\s+extension\s+(?:if\s+not\s+exists\s+)?\"?(\w+)\"?(?:\s+with)?(?:\s+schema\s+\"?(\w+)\"?)?", re.I)
_CREATE_SCHEMA = re.compile(r"\bcreate\s+schema\s+(if\s+not\s+exists\s+)?\"?(\w+)\"?", re.I)
_CREATE_IN_SCHEMA = re.compile(
    r"\bcreate\s+(?:or\s+replace\s+)?(?:unique\s+)?(?:table|function|procedure|type|view|domain|sequence"
    r"|materialized\s+view|aggregate)\s+(?:if\s+not\s+exists\s+)?\"?(\w+)\"?\.", re.I)
_OWNS_SCHEMA = re.compile(r"\b(?:comment\s+on|alter)\s+schema\s+\"?(\w+)\"?"
                          r"|\bon\s+schema\s+((?:\"?\w+\"?\s*,\s*)*\"?\w+\"?)\s+(?:to|from)\b", re.I)
_CREATE_ROLE = re.compile(r"\bcreate\s+role\s+\"?(\w+)\"?([^;]*)", re.I)


class PreflightFailed(NeurantError):
    """The server or the applying role cannot take the pending migrations; nothing was applied."""

    exit_code = 8


@dataclass(frozen=True)
class Check:
    level: str  # error | warning
    check: str
    message: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "check": self.check, "message": self.message, "fix": self.fix}


@dataclass
class PreflightReport:
    database: str
    role: str
    server_version: str
    pending: list[str]
    checks: list[Check] = field(default_factory=list)

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if c.level == "error"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.level == "warning"]

    def as_dict(self) -> dict[str, Any]:
        return {"database": self.database, "role": self.role, "server_version": self.server_version,
                "pending": self.pending, "ok": not self.errors,
                "checks": [c.as_dict() for c in self.checks]}

    def lines(self) -> list[str]:
        out = []
        for c in self.checks:
            out.append(f"{c.level.upper()}: [{c.check}] {c.message}")
            out.append(f"  fix: {c.fix}")
        return out


@dataclass
class MigrationNeeds:
    """What the pending migrations create or touch, read from their rendered SQL."""

    extensions: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # name -> (schema, by)
    schemas_created: dict[str, tuple[bool, str]] = field(default_factory=dict)  # name -> (if not exists, by)
    schemas_used: dict[str, str] = field(default_factory=dict)  # objects created in it -> by
    schemas_owned: dict[str, str] = field(default_factory=dict)  # commented on / granted on -> by
    roles: dict[str, tuple[bool, str]] = field(default_factory=dict)  # name -> (bypassrls, by)


def migration_needs(pending: list[Migration]) -> MigrationNeeds:
    """What `pending` needs of the server and the role, read from their rendered SQL."""
    needs = MigrationNeeds()
    for m in pending:
        sql = _COMMENTS.sub(" ", m.apply_sql)
        for ext, schema in _CREATE_EXTENSION.findall(sql):
            needs.extensions.setdefault(ext.lower(), (schema.lower() or None, m.id))
        for if_not_exists, schema in _CREATE_SCHEMA.findall(sql):
            needs.schemas_created.setdefault(schema.lower(), (bool(if_not_exists), m.id))
        for schema in _CREATE_IN_SCHEMA.findall(sql):
            needs.schemas_used.setdefault(schema.lower(), m.id)
        for one, many in _OWNS_SCHEMA.findall(sql):
            for schema in ([one] if one else [s.strip().strip('"') for s in many.split(",")]):
                needs.schemas_owned.setdefault(schema.lower(), m.id)
        for role, attributes in _CREATE_ROLE.findall(sql):
            needs.roles.setdefault(role.lower(), ("bypassrls" in attributes.lower().split(), m.id))
    return needs


def _one(conn: psycopg.Connection, sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _privileged_extension(conn: psycopg.Connection, ext: str) -> bool:
    """Managed services let their admin role create some untrusted extensions: Supabase's
    supautils (supautils.privileged_extensions) and RDS (members of rds_superuser)."""
    listed = _one(conn, "select current_setting('supautils.privileged_extensions', true)") or ""
    if ext in [e.strip() for e in listed.split(",")]:
        return True
    return bool(_one(conn, "select pg_has_role(current_user, 'rds_superuser', 'MEMBER') "
                           "from pg_roles where rolname = 'rds_superuser'"))


def check_server(conn: psycopg.Connection, pending: list[Migration], settings: Settings) -> PreflightReport:
    """Every pre-flight check for applying `pending` on `conn` (read-only)."""
    info = conn.execute("""
        select current_user, current_database(), current_setting('server_version'),
               current_setting('server_version_num')::int, r.rolsuper, r.rolbypassrls, r.rolcreaterole,
               has_database_privilege(current_database(), 'CREATE')
        from pg_roles r where r.rolname = current_user""").fetchone()
    assert info is not None
    role, database, version, version_num, superuser, bypassrls, createrole, create_db = info
    report = PreflightReport(database, role, version, [m.id for m in pending])
    if not pending:
        return report
    add = report.checks.append
    major = version_num // 10000

    def error(check: str, message: str, fix: str) -> None:
        add(Check("error", check, message, fix))

    # What a session left on the request roles (issue 20, item 2): reported, never blocking.
    foreign, _kept = foreign_settings(conn)
    for s in foreign:
        add(Check("warning", "role.setting",
                  f"role {s.role} has {s.name} = {s.value} {s.where}, which neurant-db did not set (a "
                  "request role can alter itself; poolers apply its defaults to every request)", s.undo))
    for who in roles_with_password(conn) or []:
        add(Check("warning", "role.password", f"role {who} has a password, which neurant-db never sets",
                  f"alter role {who} password null;"))

    if version_num < MIN_SERVER_VERSION:
        error("server.version", f"PostgreSQL {version} is too old: neurant-db needs PostgreSQL 15 or newer",
              "upgrade the server (pg_upgrade) or migrate another one")

    if not (superuser or bypassrls):
        error("role.bypassrls",
              f"role {role} is neither superuser nor BYPASSRLS: the tenant-context helpers "
              "(functions/0300) are security definer functions that must read public.users "
              "past row level security, so their owner, the applying role, must bypass it",
              f"as a superuser: alter role {role} bypassrls; (or apply as the database owner role, "
              "postgres on Supabase)")

    needs = migration_needs(pending)
    existing = {name: owner_ok for name, owner_ok in conn.execute(
        "select nspname, pg_has_role(current_user, nspowner, 'MEMBER') from pg_namespace").fetchall()}

    creates_schema = [s for s in needs.schemas_created if s not in existing]
    if META_SCHEMA not in existing:
        creates_schema.append(META_SCHEMA)
    if creates_schema and not create_db:
        error("database.create",
              f"role {role} may not create schemas in database {database} "
              f"(it would create {', '.join(sorted(creates_schema))})",
              f"make {role} the database owner (alter database {database} owner to {role};) "
              f"or grant create on database {database} to {role};")

    if META_SCHEMA in existing and not existing[META_SCHEMA] and not superuser:
        owner = _one(conn, "select nspowner::regrole::text from pg_namespace where nspname = %s", META_SCHEMA)
        error("schema.owner", f"the ledger schema {META_SCHEMA} is owned by {owner}, not {role}",
              f"apply as {owner}, the role that applied the earlier migrations (or, as a superuser, "
              f"reassign owned by {owner} to {role}; in this database)")

    for schema, (if_not_exists, by) in sorted(needs.schemas_created.items()):
        if schema in existing and not if_not_exists:
            if schema == "auth" and settings.profile in ("vanilla", "citus"):
                error(f"profile.{settings.profile}",
                      f"schema auth already exists in database {database} and {by} (profile {settings.profile}) "
                      "creates it: this database looks like Supabase, which provides auth itself",
                      "on Supabase use profile supabase (--profile supabase or profile = \"supabase\" in "
                      "neurant-db.toml); elsewhere drop the stray auth schema first")
            else:
                error("schema.exists", f"schema {schema} already exists and {by} creates it",
                      f"drop or rename schema {schema} first (nothing of neurant-db's is in it: "
                      "the ledger does not list that migration)")

    for schema, by in sorted(needs.schemas_used.items()):
        if schema in existing and schema not in needs.schemas_created and not superuser \
                and not _one(conn, "select has_schema_privilege(%s, 'CREATE')", schema):
            error("schema.create", f"role {role} may not create objects in schema {schema} ({by} does)",
                  f"grant create on schema {schema} to {role}; (PostgreSQL 15 no longer grants it on "
                  "public to everyone; the database owner has it) or apply as the database owner")

    for schema, by in sorted(needs.schemas_owned.items()):
        if schema in existing and not existing[schema] and not superuser:
            owner = _one(conn, "select nspowner::regrole::text from pg_namespace where nspname = %s", schema)
            error("schema.owner",
                  f"schema {schema} is owned by {owner}, not {role}: {by} comments on it or grants on it",
                  f"as {owner} or a superuser: alter schema {schema} owner to {role}; (an admin who "
                  f"pre-creates it: create schema {schema} authorization {role};)")

    for ext, (ext_schema, by) in sorted(needs.extensions.items()):
        installed = _one(conn, "select n.nspname from pg_extension e join pg_namespace n "
                               "on n.oid = e.extnamespace where e.extname = %s", ext)
        if installed is not None:
            if ext_schema is not None and installed != ext_schema:
                error(f"extension.{ext}",
                      f"extension {ext} is installed in schema {installed}, {by} expects schema {ext_schema}",
                      f"alter extension {ext} set schema {ext_schema}; (or set vector_schema = \"{installed}\")")
            continue
        if ext_schema is not None and ext_schema not in existing and ext_schema not in needs.schemas_created:
            error(f"extension.{ext}", f"schema {ext_schema}, where {by} creates extension {ext}, does not exist",
                  f"create schema {ext_schema} authorization {role}; (Supabase has it), or set vector_schema "
                  "to the schema that holds the extensions")
        available = conn.execute(
            "select a.default_version, coalesce((select v.trusted from pg_available_extension_versions v "
            "where v.name = a.name and v.version = a.default_version), false) "
            "from pg_available_extensions a where a.name = %s", (ext,)).fetchone()
        where = f" with schema {ext_schema}" if ext_schema else ""
        pre_create = (f"create schema if not exists {ext_schema} authorization {role}; " if ext_schema else "") + \
            f"create extension {ext}{where};"
        if available is None:
            package = f"postgresql-{major}-pgvector" if ext == "vector" else f"the package providing {ext}"
            error(f"extension.{ext}",
                  f"extension {ext} is not available on this server (not in pg_available_extensions); "
                  f"{by} creates it",
                  f"install it for PostgreSQL {major} on the database server (Debian/Ubuntu: apt-get install "
                  f"{package}; a managed service: enable {ext}), then run again")
        elif not superuser and not available[1] and not _privileged_extension(conn, ext):
            error(f"extension.{ext}",
                  f"only a superuser may create extension {ext} (it is not a trusted extension); {by} creates it",
                  f"have a superuser run once, in database {database}: {pre_create}")

    missing_roles = {r: v for r, v in needs.roles.items()
                     if not _one(conn, "select 1 from pg_roles where rolname = %s", r)}
    if missing_roles and not superuser:
        names = ", ".join(sorted(missing_roles))
        creators = sorted({b for _, b in missing_roles.values()})
        # Profile citus: the request roles log in (Citus connects to the workers as them).
        login = {r: "login" if settings.profile == "citus" else "nologin" for r in missing_roles}
        admin_sql = " ".join(f"create role {r} {login[r]} noinherit{' bypassrls' if bypass else ''};"
                             for r, (bypass, _) in sorted(missing_roles.items()))
        if not createrole:
            error("role.createrole",
                  f"roles {names} do not exist and role {role} lacks CREATEROLE to create them ({', '.join(creators)})",
                  f"have an admin create them once per server: {admin_sql} (or alter role {role} createrole;)")
        else:
            bypassing = sorted(r for r, (bypass, _) in missing_roles.items() if bypass)
            if bypassing and (major < 16 or not bypassrls):
                who = "a superuser" if major < 16 else "a role with BYPASSRLS"
                error("role.createrole",
                      f"role {', '.join(bypassing)} has BYPASSRLS, and on PostgreSQL {major} only {who} "
                      f"may create such a role; {role} cannot",
                      "have a superuser create it once per server: " + " ".join(
                          f"create role {r} {login[r]} noinherit bypassrls;" for r in bypassing))

    # functions/0350: the applying role hands public.delete_rows to neurant_member_delete, so it
    # must be its member or able to make itself one (its admin; CREATEROLE before PostgreSQL 16).
    member_delete = _one(conn, """
        select pg_has_role(current_user, r.oid, 'MEMBER')
               or exists (select 1 from pg_auth_members m where m.roleid = r.oid and m.admin_option
                            and m.member = (select oid from pg_roles where rolname = current_user))
        from pg_roles r where r.rolname = 'neurant_member_delete'""")
    if ("neurant_member_delete" in needs.roles and not superuser and member_delete is False
            and not (createrole and major < 16)):
        error("role.member",
              f"role {role} must hand private.delete_rows to the existing role neurant_member_delete "
              "(functions/0350), and is neither its member nor its admin",
              f"as a superuser, once per server: grant neurant_member_delete to {role};")

    if settings.profile == "supabase":
        absent = [r for r in CLIENT_ROLES if not _one(conn, "select 1 from pg_roles where rolname = %s", r)]
        for what, sql in (("schema auth", "select to_regnamespace('auth')"),
                          ("table auth.users", "select to_regclass('auth.users')"),
                          ("function auth.uid()", "select to_regprocedure('auth.uid()')"),
                          ("function auth.jwt()", "select to_regprocedure('auth.jwt()')")):
            if _one(conn, sql) is None:
                absent.append(what)
        if _one(conn, "select to_regclass('auth.users')") is not None:
            absent += [f"column auth.users.{c}" for c in AUTH_USER_COLUMNS if not _one(
                conn, "select 1 from pg_attribute where attrelid = 'auth.users'::regclass and attname = %s "
                      "and not attisdropped", c)]
        if absent and _one(conn, "select to_regnamespace('auth')") is not None:
            # Supabase's platform is there, its auth service has not migrated its schema yet.
            error("profile.supabase",
                  "the auth schema is not complete yet (its auth service has not migrated it): missing "
                  + ", ".join(a if " " in a else f"role {a}" for a in absent),
                  "start the project's auth service (GoTrue) once: its own migrations create the rest of "
                  "the auth schema (on supabase.com a new project's does before it is ready; self-hosted or "
                  "`supabase start`: wait until the auth container is healthy), then run preflight again. "
                  "Profile vanilla does not apply: it creates an auth schema of its own and refuses this one.")
        elif absent:
            error("profile.supabase",
                  "profile supabase expects the platform's auth surface, which this server lacks: "
                  + ", ".join(a if " " in a else f"role {a}" for a in absent),
                  "on plain PostgreSQL use profile vanilla (--profile vanilla, or profile = \"vanilla\" in "
                  "neurant-db.toml): it creates the roles and the auth schema itself")
        elif not superuser:
            lacking = [p for p in ("SELECT", "REFERENCES")
                       if not _one(conn, "select has_table_privilege('auth.users', %s)", p)]
            if lacking:
                error("profile.supabase",
                      f"role {role} lacks {' and '.join(lacking)} on auth.users (public.users and "
                      "public.companies reference it; the RPCs read it)",
                      f"grant {', '.join(p.lower() for p in lacking)} on auth.users to {role}; "
                      "(on Supabase apply as postgres)")
    elif settings.profile == "citus":
        # Citus opens its connections to the workers as the current role: a NOLOGIN
        # request role fails every distributed statement (docs/scale-out.md, "Roles").
        nologin = [r for r in ("anon", "authenticated", "service_role")
                   if _one(conn, "select not rolcanlogin from pg_roles where rolname = %s", r)]
        if nologin:
            add(Check("warning", "profile.citus",
                      f"role {', '.join(nologin)} is NOLOGIN, and Citus connects to the workers as the "
                      "request role",
                      " ".join(f"alter role {r} login;" for r in nologin)
                      + " (on every node; no password: the roles are only ever reached by SET ROLE)"))
        report.checks.extend(citus_node_checks(conn, needs))
    elif any(_one(conn, "select 1 from pg_roles where rolname = %s", r) for r in SUPABASE_ROLES):
        add(Check("warning", "profile.vanilla",
                  "this server has Supabase's roles (supabase_admin) but the profile is vanilla",
                  "on Supabase use profile supabase; ignore this on a plain server that merely has such roles"))
    return report


# What every node of a Citus cluster must hold (docs/scale-out.md, "Moving an existing
# database", step 1): read on each worker through the coordinator (run_command_on_workers:
# the coordinator's own connections, as the applying role, to this database on each node).
_NODE_FACTS = {
    "version": "select current_setting('server_version_num')",
    "citus": "select coalesce((select extversion from pg_extension where extname = 'citus'), '')",
    "roles": "select coalesce(string_agg(rolname || ':' || rolcanlogin::text, ',' order by rolname), '') "
             "from pg_roles where rolname = any (string_to_array('{roles}', ','))",
    "available": "select coalesce(string_agg(name, ',' order by name), '') from pg_available_extensions "
                 "where name = any (string_to_array('{extensions}', ','))",
}


def _role_sql(conn: psycopg.Connection, role: str) -> str:
    """create role, with the attributes the role has on the coordinator."""
    row = conn.execute("select rolcanlogin, rolinherit, rolbypassrls, rolsuper, rolcreaterole, rolcreatedb "
                       "from pg_roles where rolname = %s", (role,)).fetchone()
    assert row is not None
    flags = ["login" if row[0] else "nologin", "inherit" if row[1] else "noinherit"]
    flags += [name for name, on in (("bypassrls", row[2]), ("superuser", row[3]), ("createrole", row[4]),
                                    ("createdb", row[5])) if on]
    return f"create role {role} {' '.join(flags)};"


def citus_node_checks(conn: psycopg.Connection, needs: MigrationNeeds) -> list[Check]:
    """Profile citus on a Citus coordinator: every worker must hold this database with the
    citus extension, the same PostgreSQL and Citus versions, the extensions the migrations
    create, and every role the migrations grant to that already exists here (Citus creates
    on the workers the roles a migration creates; one that exists on the coordinator only is
    not created, and the migration's grants then fail on the workers: 42704)."""
    if _one(conn, "select to_regprocedure('pg_catalog.run_command_on_workers(text, boolean)')") is None \
            or _one(conn, "select to_regclass('pg_catalog.pg_dist_node')") is None:
        return []  # not a Citus coordinator (plain PostgreSQL: the distribution step only notices)
    checks: list[Check] = []
    database = str(_one(conn, "select current_database()"))
    version = str(_one(conn, "select current_setting('server_version_num')"))
    citus = str(_one(conn, "select extversion from pg_extension where extname = 'citus'"))
    wanted = sorted({*CLIENT_ROLES, *needs.roles, str(_one(conn, "select current_user"))})
    here = {r for (r,) in conn.execute("select rolname from pg_roles where rolname = any (%s)", (wanted,))}
    extensions = sorted(set(needs.extensions) - {"citus"})
    facts: dict[str, dict[tuple[str, int], tuple[bool, str]]] = {}
    for name, sql in _NODE_FACTS.items():
        command = sql.format(roles=",".join(wanted), extensions=",".join(extensions))
        facts[name] = {(str(n), int(p)): (bool(ok), str(out)) for n, p, ok, out in conn.execute(
            "select nodename, nodeport, success, result from pg_catalog.run_command_on_workers(%s)", (command,))}
    for node in sorted(facts["version"]):
        where = f"{node[0]}:{node[1]}"
        ok, out = facts["version"][node]
        if not ok:
            checks.append(Check("error", "citus.node",
                                f"worker {where} cannot be queried in database {database} as the applying role: {out}",
                                f"on {where}: create database {database}; then in it, as a superuser: create extension "
                                "citus; and let the coordinator connect as this role (pg_hba.conf: docs/scale-out.md, "
                                "\"Roles and settings\")"))
            continue
        if out[:-4] != version[:-4]:
            checks.append(Check("error", "citus.version",
                                f"worker {where} runs PostgreSQL {int(out) // 10000}, the coordinator "
                                f"{int(version) // 10000}", "run the same PostgreSQL major on every node"))
        node_citus = facts["citus"].get(node, (False, ""))[1]
        if not node_citus:
            checks.append(Check("error", "citus.node",
                                f"database {database} on worker {where} has no citus extension",
                                f"on {where}, in database {database}, as a superuser: create extension citus;"))
        elif node_citus != citus:
            checks.append(Check("error", "citus.version",
                                f"worker {where} has Citus {node_citus} in database {database}, the coordinator "
                                f"{citus}",
                                f"install Citus {citus} on {where}, then there: alter extension citus update;"))
        available = set(filter(None, facts["available"].get(node, (False, ""))[1].split(",")))
        for ext in extensions:
            if ext not in available:
                checks.append(Check("error", f"extension.{ext}",
                                    f"extension {ext} is not available on worker {where} (the migrations create "
                                    "it, and Citus creates it on every node)",
                                    f"install it for PostgreSQL {int(version) // 10000} on {where}, as on the "
                                    "coordinator"))
        roles = dict(r.split(":") for r in filter(None, facts["roles"].get(node, (False, ""))[1].split(",")))
        missing = [r for r in wanted if r in here and r not in roles]
        if missing:
            checks.append(Check("error", "citus.role",
                                f"role {', '.join(missing)} exists on the coordinator but not on worker {where}: the "
                                "migrations grant to it there (42704); Citus creates only the roles a migration "
                                "creates",
                                f"on {where}, as a superuser (on that node only: a worker propagates a role it "
                                "creates): set citus.enable_create_role_propagation = off; "
                                + " ".join(_role_sql(conn, r) for r in missing)))
        nologin = [r for r in CLIENT_ROLES if roles.get(r) == "false"]
        if nologin:
            checks.append(Check("warning", "profile.citus",
                                f"role {', '.join(nologin)} is NOLOGIN on worker {where}, and Citus connects to "
                                "the nodes as the request role",
                                f"on {where}: " + " ".join(f"alter role {r} login;" for r in nologin)))
    return checks


def pending_migrations(conn: psycopg.Connection, migrations: list[Migration],
                       to_version: int | None = None) -> list[Migration]:
    usable = conn.execute("select has_schema_privilege(oid, 'USAGE') from pg_namespace where nspname = %s",
                          (META_SCHEMA,)).fetchone()
    # A ledger this role cannot read belongs to another owner (checked as schema.owner): take
    # every migration as pending rather than fail on the permission.
    ledger = read_ledger(conn) if usable != (False,) else {}
    return [m for m in migrations
            if m.version not in ledger and (to_version is None or m.version <= to_version)]


def preflight(target: DatabaseTarget, migrations: list[Migration], settings: Settings, *,
              to_version: int | None = None) -> PreflightReport:
    with target.connect(purpose="preflight") as conn:
        return check_server(conn, pending_migrations(conn, migrations, to_version), settings)


def failure(report: PreflightReport) -> PreflightFailed:
    n = len(report.errors)
    problems = "\n".join(f"  - [{c.check}] {c.message}\n    fix: {c.fix}" for c in report.errors)
    return PreflightFailed(
        f"pre-flight failed on database {report.database} as role {report.role} "
        f"(PostgreSQL {report.server_version}): {n} problem(s), nothing was applied\n{problems}",
        hint="fix them and check again with `neurant-db preflight` (docs/deploy.md: the non-superuser owner)",
    )


def require(target: DatabaseTarget, migrations: list[Migration], settings: Settings, *,
            to_version: int | None = None) -> PreflightReport:
    """The report, or PreflightFailed listing every error (nothing is applied)."""
    report = preflight(target, migrations, settings, to_version=to_version)
    if report.errors:
        raise failure(report)
    return report
