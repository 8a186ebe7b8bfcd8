"""Generate the tenant-isolation matrix as a pgTAP script.

Inputs: the live catalog (every table in the exposed schemas) and the access
spec (tests/isolation/access_spec.toml, the matrix of docs/design.md in TOML). Output:
one pgTAP assertion per table check and per table x identity x command x target
cell, each calling tests.check_cell() (tests/fixtures/0001_isolation_probe.sql).
A table the spec does not know, a spec entry for a table that does not exist,
RLS not enabled or not forced, or a table without a policy, each fail. Every sequence
in those schemas is a cell too: no client role (anon, authenticated, PUBLIC) may use,
read or set it (Supabase's default privileges grant anon and authenticated USAGE and
UPDATE on every new sequence; a setval to the maximum stops the table's inserts).

A deny cell also asserts why it was denied: by RLS (no row visible or affected,
or "new row violates row-level security policy") or by a missing grant
("permission denied for ..."). A cell stopped by anything else (a trigger, a
check, another 42501) fails unless the spec declares it under `deny_by_rule`
with the rule's message pattern, so a business rule cannot hide a missing policy.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .database import connect
from .ledger import read_ledger, sql_literal

EXPOSED_SCHEMAS = ("public", "private", "archive")
COMPANY_A = "aaaaaaaa-0000-0000-0000-000000000000"
COMPANY_B = "bbbbbbbb-0000-0000-0000-000000000000"
COMPANY_IDENTITIES = {
    "owner": ("aaaaaaaa-0000-0000-0000-000000000001", "owner"),
    "administrador": ("aaaaaaaa-0000-0000-0000-000000000002", "administrador"),
    "supervisor": ("aaaaaaaa-0000-0000-0000-000000000003", "supervisor"),
    "operador": ("aaaaaaaa-0000-0000-0000-000000000004", "operador"),
}
IDENTITIES = (*COMPANY_IDENTITIES, "no_company", "anon", "service_role")
COMMANDS = ("select", "insert", "update", "delete")
TABLE_KEYS = {"tenant_column", "update_set", "insert_overrides", "targets", "allow", "global",
              "note", "deny_by_rule", "profile", "on_profile"}
PROFILE_KEYS = {"allow", "deny_by_rule"}
RULE_PREFIX = "deny: rule "


class SpecError(ValueError):
    pass


@dataclass
class TableSpec:
    name: str
    tenant_column: str = "company_id"
    update_set: str | None = None
    insert_overrides: dict[str, str] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    allow: dict[str, list[str]] = field(default_factory=dict)
    is_global: bool = False
    # "command identity[@target]" -> regex over "<sqlstate>: <message>"
    deny_by_rule: dict[str, str] = field(default_factory=dict)
    # The render profile(s) that create the table when not all do (profile = "citus",
    # profile = "vanilla supabase"): absent elsewhere.
    profile: str | None = None
    # What differs on a render profile: [table."x".on_profile.citus.allow] replaces the
    # allow list of each command it names, [...on_profile.citus.deny_by_rule] adds (or
    # replaces) rules, for a database migrated with that profile.
    on_profile: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_profiles(self, profiles: set[str]) -> TableSpec:
        """The expectations on a database migrated with these render profiles."""
        spec = self
        for name in sorted(profiles & set(self.on_profile)):
            override = self.on_profile[name]
            spec = replace(spec,
                           allow={**spec.allow, **{k: list(v) for k, v in override.get("allow", {}).items()}},
                           deny_by_rule={**spec.deny_by_rule, **dict(override.get("deny_by_rule", {}))},
                           on_profile={})
        return spec

    def rule_for(self, identity: str, command: str, target: str) -> str | None:
        """The declared business rule that denies this cell, if any."""
        exact = self.deny_by_rule.get(f"{command} {identity}@{target}")
        if exact is not None or target == "other":
            return exact
        return self.deny_by_rule.get(f"{command} {identity}")

    def expectation(self, identity: str, command: str, target: str) -> str:
        """What the probe must report: allow, deny (RLS or grant) or deny: rule <regex>."""
        verdict = self.expected(identity, command, target)
        rule = self.rule_for(identity, command, target) if verdict == "deny" else None
        return verdict if rule is None else RULE_PREFIX + rule

    def expected(self, identity: str, command: str, target: str) -> str:
        for entry in self.allow.get(command, []):
            who, _, where = entry.partition("@")
            if who != identity:
                continue
            if target == "other":
                if identity == "service_role" and not where:
                    return "allow"
                continue
            if not where or where == target:
                return "allow"
        return "deny"


def load_spec(path: Path) -> dict[str, TableSpec]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    tables: dict[str, Any] = data.get("table", {})
    specs: dict[str, TableSpec] = {}
    for name, raw in tables.items():
        unknown = set(raw) - TABLE_KEYS
        if unknown:
            raise SpecError(f"{name}: unknown key(s) {sorted(unknown)}")
        spec = TableSpec(
            name=name,
            tenant_column=raw.get("tenant_column", "company_id"),
            update_set=raw.get("update_set"),
            insert_overrides=dict(raw.get("insert_overrides", {})),
            targets=dict(raw.get("targets", {})),
            allow={k: list(v) for k, v in raw.get("allow", {}).items()},
            is_global=bool(raw.get("global", False)),
            deny_by_rule=dict(raw.get("deny_by_rule", {})),
            profile=raw.get("profile"),
            on_profile={k: dict(v) for k, v in raw.get("on_profile", {}).items()},
        )
        for profile, override in spec.on_profile.items():
            unknown = set(override) - PROFILE_KEYS
            if unknown:
                raise SpecError(f"{name}: unknown key(s) {sorted(unknown)} in on_profile.{profile}")
            _validate(spec.for_profiles({profile}), f"{name} (on profile {profile})")
        _validate(spec, name)
        specs[name] = spec
    return specs


def _validate(spec: TableSpec, name: str) -> None:
    """The allow entries and deny_by_rule keys of one (possibly profile-specific) spec."""
    for command, entries in spec.allow.items():
        if command not in COMMANDS:
            raise SpecError(f"{name}: unknown command {command!r} in allow")
        for entry in entries:
            who, _, where = entry.partition("@")
            if who not in IDENTITIES:
                raise SpecError(f"{name}: unknown identity {who!r} in allow.{command}")
            if where and where not in spec.targets:
                raise SpecError(f"{name}: unknown target {where!r} in allow.{command}")
    for key, pattern in spec.deny_by_rule.items():
        command, _, cell = key.partition(" ")
        who, _, where = cell.partition("@")
        if command not in COMMANDS or who not in IDENTITIES:
            raise SpecError(f"{name}: deny_by_rule key {key!r} is not 'command identity[@target]'")
        if where and where != "other" and where not in (spec.targets or {"own": ""}):
            raise SpecError(f"{name}: unknown target {where!r} in deny_by_rule {key!r}")
        if not isinstance(pattern, str) or not pattern:
            raise SpecError(f"{name}: deny_by_rule {key!r} needs the rule's message pattern")
        targets = [where] if where else (list(spec.targets) or ["own"])
        if any(spec.expected(who, command, t) == "allow" for t in targets):
            raise SpecError(f"{name}: deny_by_rule {key!r} names a cell the spec allows")


def _migrated_profiles(url: str) -> set[str]:
    """The render profiles the database's applied migrations were rendered with."""
    with connect(url, purpose="isolation") as conn:
        return {str((row.settings or {}).get("profile")) for row in read_ledger(conn).values()}


def _catalog(url: str) -> dict[str, dict[str, Any]]:
    with connect(url, purpose="isolation") as conn:
        rows = conn.execute(
            """
            select n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (select count(*) from pg_policy p where p.polrelid = c.oid)
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.relkind in ('r', 'p') and n.nspname = any(%s)
              and not c.relispartition
            order by 1
            """,
            (list(EXPOSED_SCHEMAS),),
        ).fetchall()
    return {r[0]: {"rls": r[1], "force": r[2], "policies": r[3]} for r in rows}


CLIENT_ROLES = ("anon", "authenticated", "public")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")


def _sequences(url: str) -> list[str]:
    with connect(url, purpose="isolation") as conn:
        rows = conn.execute(
            "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind = 'S' and n.nspname = any(%s) order by 1", (list(EXPOSED_SCHEMAS),)).fetchall()
    return [r[0] for r in rows]


def sequence_cells(url: str) -> list[str]:
    """One assertion per sequence and client role: it holds none of USAGE (nextval), SELECT
    (currval) and UPDATE (setval)."""
    privileges = "array[" + ", ".join(sql_literal(p) for p in SEQUENCE_PRIVILEGES) + "]"
    return [
        f"select is(array(select p from unnest({privileges}) p "
        f"where has_sequence_privilege({sql_literal(role)}, {sql_literal(seq)}, p)), '{{}}'::text[], "
        f"{sql_literal(f'{role} cannot use, read or set sequence {seq} (nextval, currval, setval)')});"
        for seq in _sequences(url) for role in CLIENT_ROLES
    ]


def target_predicate(spec: TableSpec, target: str, identity: str) -> str:
    """The SQL predicate selecting the rows of one cell's target (own, other, or a named target)."""
    user_id, role = COMPANY_IDENTITIES.get(identity, (None, None))
    if spec.is_global:
        base = "true"
    elif target == "other":
        return f"{spec.tenant_column} = '{COMPANY_B}'"
    else:
        base = f"{spec.tenant_column} = '{COMPANY_A}'"
    if target == "own":
        return base
    pred = spec.targets[target]
    pred = pred.replace("{actor_user_id}", user_id or "").replace("{actor_role}", role or "")
    return f"{base} and ({pred})"


def cells(spec: TableSpec) -> list[tuple[str, str, str, str]]:
    """(identity, command, target, expectation) for every cell of one table."""
    targets = list(spec.targets) or ["own"]
    if not spec.is_global:
        targets.append("other")
    out = []
    for identity in IDENTITIES:
        for command in COMMANDS:
            for target in targets:
                if identity in ("no_company", "anon") and target == "other":
                    continue  # they belong to no company: `own` already is someone else's
                out.append((identity, command, target, spec.expectation(identity, command, target)))
    return out


def generate_matrix_sql(url: str, spec_path: Path) -> str:
    catalog = _catalog(url)
    try:
        specs = load_spec(spec_path)
        spec_error = None
    except (SpecError, tomllib.TOMLDecodeError) as exc:
        specs, spec_error = {}, str(exc)
    lines: list[str] = []
    if spec_error:
        lines.append(f"select fail({sql_literal('the access spec is valid: ' + spec_error)});")
    for table, info in catalog.items():
        lines.append(f"select ok({'true' if table in specs else 'false'}, "
                     f"{sql_literal(table + ' is declared in the access spec')});")
        lines.append(f"select ok({'true' if info['rls'] and info['force'] else 'false'}, "
                     f"{sql_literal(table + ' has row level security enabled and forced')});")
        lines.append(f"select ok({'true' if info['policies'] else 'false'}, "
                     f"{sql_literal(table + ' has at least one policy')});")
    profiles = _migrated_profiles(url)
    for table, spec in specs.items():
        if table not in catalog and (spec.profile is None or profiles & set(spec.profile.split())):
            lines.append(f"select fail({sql_literal(table + ' in the access spec exists in the database')});")
    for table, spec in specs.items():
        if table not in catalog:
            continue
        spec = spec.for_profiles(profiles)
        overrides = sql_literal(_json(spec.insert_overrides))
        update_set = sql_literal(spec.update_set) if spec.update_set else "null"
        for identity, command, target, expected in cells(spec):
            verb = "may" if expected == "allow" else "cannot"
            scope = {"own": "own company's rows", "other": "another company's rows"}.get(
                target, f"own company's {target} rows")
            why = {"allow": "", "deny": " (RLS or grant)"}.get(expected, " (business rule)")
            desc = f"{identity} {verb} {command} {scope} of {table}{why}"
            pred = target_predicate(spec, target, identity)
            lines.append(
                f"select tests.check_cell({sql_literal(expected)}, {sql_literal(desc)}, "
                f"{sql_literal(identity)}, {sql_literal(command)}, {sql_literal(table)}::regclass, "
                f"{sql_literal(pred)}, {update_set}, {overrides}::jsonb);"
            )
    lines += sequence_cells(url)
    return f"select plan({len(lines)});\n" + "\n".join(lines) + "\nselect * from finish();\n"


def _json(value: dict[str, str]) -> str:
    import json

    return json.dumps(value)


def _cell_text(spec: TableSpec, identity: str, command: str) -> str:
    targets = list(spec.targets) or ["own"]
    allowed = [t for t in targets if spec.expected(identity, command, t) == "allow"]
    if not allowed:
        return "-"
    text = "all" if len(allowed) == len(targets) else ", ".join(allowed)
    if not spec.is_global and spec.expected(identity, command, "other") == "allow":
        text += " +other"
    return text


def render_matrix(specs: dict[str, TableSpec]) -> str:
    """The access spec as a readable Markdown matrix: table x identity x command."""
    lines = [
        "# Access matrix",
        "",
        "Generated from `tests/isolation/access_spec.toml` by `neurant-db matrix`; "
        "`make test` checks every cell against the live database",
        f"({sum(len(cells(s)) for s in specs.values())} cells). A cell lists the row sets of the "
        "identity's own company it may act on (`all`, or named targets of that table); "
        "`-` means denied; `+other` means another company's rows too (service_role only). "
        "Every identity of a company is denied on every other company's rows.",
        "A denied cell is denied by RLS or a missing grant, except the cells listed under "
        "*Denied by a business rule* (the rule's SQLSTATE and message pattern), which the "
        "suite checks were stopped by that rule and nothing else.",
        "",
    ]
    for name in sorted(specs):
        spec = specs[name]
        targets = ", ".join(f"`{t}`: {p}" for t, p in spec.targets.items())
        lines += [f"## {name}" + (" (global)" if spec.is_global else "")
                  + (f" (profile {spec.profile.replace(' ', ' and ')} only)" if spec.profile else ""), ""]
        if targets:
            lines += [f"Targets: {targets}", ""]
        lines += ["| identity | select | insert | update | delete |", "|---|---|---|---|---|"]
        for identity in IDENTITIES:
            row = [_cell_text(spec, identity, c) for c in COMMANDS]
            lines.append(f"| {identity} | " + " | ".join(row) + " |")
        lines.append("")
        if spec.deny_by_rule:
            lines += ["Denied by a business rule (not RLS or a grant):", ""]
            lines += [f"- {key}: `{pattern}`" for key, pattern in spec.deny_by_rule.items()]
            lines.append("")
        for profile in sorted(spec.on_profile):
            variant = spec.for_profiles({profile})
            lines += [f"On profile {profile} (the rest as above):", ""]
            lines += [f"- {identity} {command}: {_cell_text(variant, identity, command)}"
                      for identity in IDENTITIES for command in COMMANDS
                      if _cell_text(variant, identity, command) != _cell_text(spec, identity, command)]
            lines += [f"- denied by a business rule: {key}: `{pattern}`"
                      for key, pattern in variant.deny_by_rule.items() if spec.deny_by_rule.get(key) != pattern]
            lines.append("")
    return "\n".join(lines)
