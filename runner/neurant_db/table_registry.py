"""The table registry (schema/_tables.toml): one entry per table, loaded and validated.

The templates get it as the jinja global `tables` (render.py) and generate the repeated
SQL from it (tenant guards, legal-hold triggers, doctor notes, the Citus layout); doctor
reads which tables are tenant tables and which exceptions they carry from it. A registry
that does not validate stops rendering with one error naming the entry and the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from .errors import MigrationSourceError, not_utf8
from .paths import sql_root

REGISTRY_FILE = Path("schema") / "_tables.toml"
SCOPES = ("root", "tenant", "global")
PROFILES = ("vanilla", "supabase", "citus")
PLACEMENTS = ("reference", "distributed")
# Doctor exceptions a registry entry may declare: of the table itself, or of one of its
# constraints/indexes ("tenant.unique <name>", "fk.index <name>").
EXCEPTIONS = ("legal_hold", "tenant.cascade")
OBJECT_EXCEPTION = re.compile(r"^(tenant\.unique|fk\.index) [a-z_][a-z0-9_]*$")
HOLD_EVENTS = ("update or delete", "delete")
TABLE_NAME = re.compile(r"^(public|private|archive|auth)\.[a-z_][a-z0-9_]*$")
COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
DEFAULT_GUARD_NOTE = "a member inserts only into their own company."
DEFAULT_KEY_NOTE = "the tenant key never changes, for any role."
DEFAULT_TRUNCATE_NOTE = "No truncate while a legal hold covers rows of this table."
KEYS = {"scope", "profiles", "rls", "read_only", "audited", "citus", "guard_note", "guard_key_note",
        "legal_hold", "allow", "grants", "archive_of", "sequences", "truncate_refused", "since"}
ROLES = ("anon", "authenticated", "service_role", "neurant_member_delete")
# One privilege of a grant, optionally column-listed: `select`, `update (name, industry)`.
PRIVILEGE = re.compile(r"^(all|select|insert|update|delete|truncate|references|trigger)"
                       r"( \([a-z_][a-z0-9_]*(, [a-z_][a-z0-9_]*)*\))?$")
HOLD_KEYS = {"map", "note", "free", "update_of", "events", "truncate_note"}


@dataclass(frozen=True)
class LegalHold:
    """How <table>_legal_hold maps a row to holds, and what may still change under one."""

    map: str  # 'tenant' | 'company' | the column holding the conversation id
    note: str
    free: tuple[str, ...] = ()
    update_of: tuple[str, ...] = ()
    events: str = "update or delete"
    truncate_note: str = DEFAULT_TRUNCATE_NOTE


@dataclass(frozen=True)
class TableEntry:
    name: str  # schema.table
    scope: str
    profiles: tuple[str, ...] = PROFILES
    rls: bool = True
    read_only: bool = False
    audited: bool = False
    citus: str | None = None
    guard_note: str = DEFAULT_GUARD_NOTE
    guard_key_note: str = DEFAULT_KEY_NOTE
    legal_hold: LegalHold | None = None
    allow: dict[str, str] = field(default_factory=dict)
    # role -> privileges on the table, in order (service_role: ["all"] unless given)
    grants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    archive_of: str | None = None  # archive tables: the live table whose rows they keep
    # the sequences the table owns (identity columns): rls() revokes them from every client role
    sequences: tuple[str, ...] = ()
    # what its delete triggers keep that a TRUNCATE would leave stale: TRUNCATE is refused
    truncate_refused: str | None = None
    position: int | None = None  # order of distribution on Citus (1 first), None off citus
    # the version of the migration that creates the table (tables added after a release):
    # the loops over entries skip it while rendering an older migration (Registry.as_of)
    since: int | None = None

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    @property
    def relname(self) -> str:
        return self.name.split(".")[1]

    @property
    def tenant(self) -> bool:
        """Root or tenant: a table whose rows belong to one company."""
        return self.scope != "global"

    @property
    def guarded(self) -> bool:
        """Carries the tenant guard (every tenant table; the root's id never changes)."""
        return self.scope == "tenant"

    @property
    def distribution_column(self) -> str | None:
        if self.citus != "distributed":
            return None
        return "id" if self.scope == "root" else "company_id"

    def on(self, profile: str) -> bool:
        return profile in self.profiles

    def notes(self, obj: str | None = None) -> list[tuple[str, str]]:
        """(check, reason) of the table's own exceptions, or of those of its constraint or
        index `obj`: what its COMMENT repeats as `doctor: allow <check> <reason>`."""
        found = []
        for key, reason in self.allow.items():
            check, _, name = key.partition(" ")
            if (name or None) == obj:
                found.append((check, reason))
        return found


@dataclass(frozen=True)
class Registry:
    entries: tuple[TableEntry, ...]

    def __getitem__(self, name: str) -> TableEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise MigrationSourceError(f"{REGISTRY_FILE}: no entry for table {name}",
                                   hint=f"add [table.\"{name}\"] to {REGISTRY_FILE} (CONVENTIONS.md, "
                                   "\"The table registry\")")

    def get(self, name: str) -> TableEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def guarded(self, name: str) -> TableEntry:
        """The entry of a tenant table (the tenant guard's macro refuses any other)."""
        entry = self[name]
        if not entry.guarded:
            raise MigrationSourceError(f"{REGISTRY_FILE}: {name} is not a tenant table (scope = "
                                       f"\"{entry.scope}\"), it gets no tenant guard")
        return entry

    def secured(self, name: str) -> TableEntry:
        """The entry of a table under RLS (the RLS header's macro refuses any other)."""
        entry = self[name]
        if not entry.rls:
            raise MigrationSourceError(f"{REGISTRY_FILE}: {name} says rls = false, it gets no RLS header")
        return entry

    def read_only(self, name: str) -> TableEntry:
        """The entry of a table carrying the read-only policies (read_only = true)."""
        entry = self[name]
        if not entry.read_only:
            raise MigrationSourceError(f"{REGISTRY_FILE}: {name} does not say read_only = true",
                                       hint="set it in the registry, so doctor and the tests expect the policies")
        return entry

    def as_of(self, version: int) -> Registry:
        """The registry as the migration numbered `version` sees it in its loops: without
        the entries whose table a later migration creates (since > version), so that adding
        an entry never changes the render of a released migration."""
        return Registry(tuple(e for e in self.entries if e.since is None or e.since <= version))

    def on(self, profile: str) -> list[TableEntry]:
        """The entries the given render profile creates, in registry (Citus) order."""
        return [e for e in self.entries if e.on(profile)]

    def archives(self) -> list[TableEntry]:
        """The archive tables (schema archive), each naming its live table, in registry order."""
        return [e for e in self.entries if e.archive_of is not None]

    def held(self) -> list[TableEntry]:
        """The tables carrying the legal-hold triggers, in registry order."""
        return [e for e in self.entries if e.legal_hold is not None]

    def truncate_refused(self) -> list[TableEntry]:
        """The tables whose TRUNCATE is refused (schema/_truncate_refused.sql), in registry order."""
        return [e for e in self.entries if e.truncate_refused is not None]


class _Reader:
    """Reads one entry, collecting every problem rather than stopping at the first."""

    def __init__(self, name: str, raw: dict[str, Any], problems: list[str]) -> None:
        self.name, self.raw, self.problems = name, raw, problems

    def fail(self, message: str) -> None:
        self.problems.append(f"table {self.name}: {message}")

    def text(self, raw: dict[str, Any], key: str, default: str, where: str = "") -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}{key} must be a non-empty string")
            return default
        return value

    def flag(self, key: str) -> bool:
        value = self.raw.get(key, key == "rls")
        if not isinstance(value, bool):
            self.fail(f"{key} must be true or false")
            return False
        return value

    def columns(self, raw: dict[str, Any], key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(c, str) and COLUMN.match(c) for c in value):
            self.fail(f"legal_hold.{key} must be a list of column names")
            return ()
        return tuple(value)

    def grants(self) -> dict[str, tuple[str, ...]]:
        raw = self.raw.get("grants", {})
        if not isinstance(raw, dict):
            self.fail("grants must map a role to its privileges")
            return {}
        grants: dict[str, tuple[str, ...]] = {}
        for role, privileges in raw.items():
            if role not in ROLES:
                self.fail(f"grants.{role}: unknown role (known: {', '.join(ROLES)})")
            elif not isinstance(privileges, list) or not all(
                    isinstance(p, str) and PRIVILEGE.match(p) for p in privileges):
                self.fail(f"grants.{role} must list privileges like \"select\" or \"update (a, b)\"")
            else:
                grants[role] = tuple(privileges)
        grants.setdefault("service_role", ("all",))
        return grants

    def sequences(self) -> tuple[str, ...]:
        value = self.raw.get("sequences", [])
        schema = self.name.split(".")[0]
        if not isinstance(value, list) or not all(
                isinstance(v, str) and v.startswith(schema + ".") and COLUMN.match(v.split(".", 1)[1])
                for v in value):
            self.fail(f"sequences must list the table's sequences as {schema}.<name>")
            return ()
        return tuple(value)

    def since(self) -> int | None:
        value = self.raw.get("since")
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 9999:
            self.fail("since must be the version (1-9999) of the migration that creates the table")
            return None
        return value

    def legal_hold(self) -> LegalHold | None:
        raw = self.raw.get("legal_hold")
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.fail("legal_hold must be a table { map = ..., note = ... }")
            return None
        unknown = sorted(set(raw) - HOLD_KEYS)
        if unknown:
            self.fail(f"unknown key(s) in legal_hold: {', '.join(unknown)} (known: {', '.join(sorted(HOLD_KEYS))})")
        mapping = self.text(raw, "map", "company", "legal_hold.")
        if not COLUMN.match(mapping):
            self.fail("legal_hold.map must be 'tenant', 'company' or a column name")
        events = self.text(raw, "events", "update or delete", "legal_hold.")
        if events not in HOLD_EVENTS:
            self.fail(f"legal_hold.events must be one of {', '.join(HOLD_EVENTS)}")
        return LegalHold(map=mapping, note=self.text(raw, "note", "", "legal_hold."),
                         free=self.columns(raw, "free"), update_of=self.columns(raw, "update_of"),
                         events=events,
                         truncate_note=self.text(raw, "truncate_note", DEFAULT_TRUNCATE_NOTE, "legal_hold."))

    def entry(self) -> TableEntry:
        raw = self.raw
        unknown = sorted(set(raw) - KEYS)
        if unknown:
            self.fail(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
        if not TABLE_NAME.match(self.name):
            self.fail("the name must be schema.table, schema one of public, private, archive, auth")
        raw_scope = raw.get("scope")
        scope_known = raw_scope in SCOPES
        if not scope_known:
            self.fail(f"scope must be one of {', '.join(SCOPES)}, not {raw_scope!r}")
        scope = str(raw_scope) if scope_known else "global"
        profiles = raw.get("profiles", list(PROFILES))
        if not isinstance(profiles, list) or not profiles or not set(profiles) <= set(PROFILES):
            self.fail(f"profiles must be a non-empty list of {', '.join(PROFILES)}")
            profiles = list(PROFILES)
        citus = raw.get("citus")
        if citus is not None and citus not in PLACEMENTS:
            self.fail(f"citus must be one of {', '.join(PLACEMENTS)}, not {citus!r}")
        if ("citus" in profiles) != (citus is not None):
            self.fail("citus (its placement) is required exactly when profile citus creates the table")
        allow = raw.get("allow", {})
        if not isinstance(allow, dict) or not all(isinstance(v, str) and v.strip() for v in allow.values()):
            self.fail("allow must map a doctor check to its reason")
            allow = {}
        for check in sorted(c for c in allow if c not in EXCEPTIONS and not OBJECT_EXCEPTION.match(c)):
            self.fail(f"allow.{check}: unknown exception (known: {', '.join(EXCEPTIONS)}, "
                      "tenant.unique <key name>, fk.index <constraint name>)")
        hold = self.legal_hold()
        entry = TableEntry(
            name=self.name, scope=scope, profiles=tuple(profiles), rls=self.flag("rls"),
            read_only=self.flag("read_only"), audited=self.flag("audited"), citus=citus,
            guard_note=self.text(raw, "guard_note", DEFAULT_GUARD_NOTE),
            guard_key_note=self.text(raw, "guard_key_note", DEFAULT_KEY_NOTE),
            legal_hold=hold, allow=dict(allow), grants=self.grants(), archive_of=raw.get("archive_of"),
            sequences=self.sequences(),
            truncate_refused=(self.text(raw, "truncate_refused", "-") if "truncate_refused" in raw else None),
            since=self.since())
        if (entry.schema == "archive") != isinstance(entry.archive_of, str):
            self.fail("archive_of (the live table it archives) is required exactly for the tables of schema archive")
        if scope_known:
            self.scope_rules(entry)
        return entry

    def scope_rules(self, entry: TableEntry) -> None:
        """What the scope of an entry requires of its other keys."""
        if entry.tenant and (entry.legal_hold is None) == ("legal_hold" not in entry.allow):
            self.fail("a tenant table has either legal_hold = {...} or allow.legal_hold = \"<reason>\", "
                      "exactly one")
        if entry.tenant:
            return
        if entry.citus == "distributed":
            self.fail("a global table has no tenant key to distribute by: citus = \"reference\"")
        if (entry.legal_hold or any(not c.startswith("fk.index ") for c in entry.allow)
                or entry.read_only or "guard_note" in self.raw):
            self.fail("a global table has no legal hold, tenant exceptions, read-only policies or tenant guard")


def parse(text: str, source: str = str(REGISTRY_FILE)) -> Registry:
    """The registry in `text`; MigrationSourceError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MigrationSourceError(f"{source}: not valid TOML: {exc}") from None
    tables = data.get("table")
    problems: list[str] = [f"unknown top-level key {k!r} (only [table.\"schema.name\"])"
                           for k in sorted(set(data) - {"table"})]
    if not isinstance(tables, dict) or not tables:
        problems.append("no [table.\"schema.name\"] entry")
        tables = {}
    entries: list[TableEntry] = []
    for name, raw in tables.items():
        if not isinstance(raw, dict):
            problems.append(f"table {name}: must be a table of keys")
            continue
        entries.append(_Reader(name, raw, problems).entry())
    # Citus positions: the entries without `since` in file order, then those added after a
    # release by the version of their migration (file order among equals), so a new entry
    # never moves the position of a released one (seeds/3990 renders them).
    placed = sorted((e for e in entries if e.citus is not None), key=lambda e: e.since or 0)
    positions = {e.name: i for i, e in enumerate(placed, start=1)}
    entries = [replace(e, position=positions[e.name]) if e.name in positions else e for e in entries]
    names = {e.name for e in entries}
    problems += [f"table {e.name}: archive_of names {e.archive_of}, which has no entry"
                 for e in entries if e.archive_of is not None and e.archive_of not in names]
    roots = [e.name for e in entries if e.scope == "root"]
    if len(roots) != 1:
        problems.append(f"exactly one table has scope = \"root\" (found: {', '.join(roots) or 'none'})")
    if problems:
        raise MigrationSourceError(f"{source} is invalid:\n  " + "\n  ".join(problems),
                                   hint=f"see the header of {REGISTRY_FILE} for the keys")
    return Registry(tuple(entries))


@cache
def _load(path: Path) -> Registry:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MigrationSourceError(f"the table registry {path} is missing",
                                   hint="restore schema/_tables.toml, or point NEURANT_SQL_ROOT at a complete tree"
                                   ) from None
    except UnicodeDecodeError as exc:
        raise MigrationSourceError(not_utf8(REGISTRY_FILE, exc)) from None
    return parse(text, str(REGISTRY_FILE))


def load(root: Path | None = None) -> Registry:
    """The registry of the SQL tree at root (default: the package's), cached per file."""
    return _load(((root or sql_root()) / REGISTRY_FILE).resolve())


class VersionedRegistry:
    """What the templates see as `tables`: the registry as of the migration being rendered
    (render.py sets `version` before each file). Its loops (entries, on(), held(),
    archives(), truncate_refused()) skip the entries whose `since` is later; a lookup of one
    table by name (tables['t'], secured(), guarded(), read_only()) finds every entry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.version = 9999

    @property
    def entries(self) -> tuple[TableEntry, ...]:
        return self.registry.as_of(self.version).entries

    def __getitem__(self, name: str) -> TableEntry:
        return self.registry[name]

    def __getattr__(self, name: str) -> Any:
        if name in ("on", "archives", "held", "truncate_refused"):
            return getattr(self.registry.as_of(self.version), name)
        return getattr(self.registry, name)


class MissingRegistry:
    """What the templates get in a tree without schema/_tables.toml (a scratch tree of a
    few migrations): nothing, until a template asks it something."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _refuse(self) -> MigrationSourceError:
        return MigrationSourceError(f"the table registry {self._path} is missing, and a template uses it",
                                    hint="restore schema/_tables.toml, or point NEURANT_SQL_ROOT at a complete tree")

    def __getattr__(self, name: str) -> Any:
        raise self._refuse()

    def __getitem__(self, name: str) -> Any:
        raise self._refuse()


def for_templates(root: Path) -> VersionedRegistry | MissingRegistry:
    """The registry the templates see: loaded when the tree has one (as of the migration
    being rendered), else a stand-in that refuses every question (only a template that uses
    `tables` needs the file)."""
    path = (root / REGISTRY_FILE).resolve()
    return VersionedRegistry(_load(path)) if path.is_file() else MissingRegistry(path)


def load_if_present(root: Path | None = None) -> Registry:
    """The registry, or an empty one when the tree has none (doctor then knows no table)."""
    path = ((root or sql_root()) / REGISTRY_FILE).resolve()
    return _load(path) if path.is_file() else Registry(())
