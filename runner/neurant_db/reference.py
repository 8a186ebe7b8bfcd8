"""docs/schema.md: the schema reference in Markdown, written from a catalog read
(never from the SQL files), in a stable order so that the same schema always
gives the same text."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .catalog import CONSTRAINT_KIND, Catalog, Function, Grant, Policy, Schema, Table

SCHEMA_NOTES = {
    "public": "Tenant tables, enum types, reference tables and the functions (RPC) services and clients call.",
    "private": "Trigger functions, internal helpers and backend-only tables; not granted to clients.",
    "archive": "Archived tenant rows, moved out of the live tables by the lifecycle jobs.",
    "auth": "The Supabase-compatible auth surface, created by this package with profile vanilla only; "
            "on Supabase the schema is Supabase's own.",
}


def anchor(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-").lower()


def _cell(text: str | None) -> str:
    if text is None or text == "":
        return ""
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    flat = " ".join(text.split())
    ticks = "``" if "`" in flat else "`"
    return f"{ticks}{flat}{ticks}" if ticks == "`" else f"{ticks} {flat} {ticks}"


def _sentence(text: str | None) -> str:
    if not text:
        return "*(no comment)*"
    flat = " ".join(text.split())
    return flat


def grant_in_words(g: Grant) -> str:
    parts: list[str] = []
    if g.all_privileges:
        parts.append("ALL")
    elif g.table_privileges:
        parts.append(", ".join(g.table_privileges))
    parts.extend(f"{privilege} ({', '.join(columns)})" for privilege, columns in g.column_privileges)
    return f"{g.role}: " + "; ".join(parts)


def policy_in_words(p: Policy) -> str:
    kind = "" if p.permissive else " (restrictive)"
    text = f"`{p.name}`{kind}: {p.command} to {', '.join(p.roles)} — {_sentence(p.comment)}"
    if p.using is not None:
        text += f" Rows where: {_code(p.using)}."
    if p.with_check is not None:
        text += f" New rows must satisfy: {_code(p.with_check)}."
    return text


def function_in_words(f: Function) -> list[str]:
    lines = [f"- {f.kind}" + (f" returning {_code(f.returns)}" if f.returns else "")
             + f"; language {f.language}, {f.volatility}, "
             + ("**security definer**" if f.security_definer else "security invoker")]
    if f.config:
        lines.append("- settings: " + ", ".join(_code(c) for c in f.config))
    lines.append("- executable by: " + (", ".join(f.executors) if f.executors else "nobody but its owner"))
    return lines


def _note(comment: str | None) -> str:
    return f" — {_sentence(comment)}" if comment else ""


def _listing(title: str, items: list[str]) -> list[str]:
    return [title, "", *(f"- {item}" for item in items), ""] if items else []


def _table(t: Table) -> list[str]:
    out = [f'<a id="{anchor(t.qualified)}"></a>', "", f"#### `{t.qualified}`", ""]
    if t.kind != "table":
        out += [f"*{t.kind}*", ""]
    out += [_sentence(t.comment), ""]
    rls = ("enabled and forced" if t.rls_forced else "enabled (not forced)") if t.rls_enabled else "**disabled**"
    out += [f"Row level security: {rls}.", ""]
    out += ["| column | type | nullable | default | comment |", "|---|---|---|---|---|"]
    for c in t.columns:
        default = f"`{_cell(c.default)}`" if c.default else ""
        out.append(f"| `{c.name}` | `{_cell(c.type)}` | {'' if c.not_null else 'yes'} | {default} "
                   f"| {_cell(c.comment)} |")
    out.append("")
    out += _listing("Keys and checks:", [
        f"`{k.name}` ({CONSTRAINT_KIND.get(k.kind, k.kind)}): {_code(k.definition)}{_note(k.comment)}"
        for k in t.constraints])
    out += _listing("Indexes:", [f"`{i.name}`: {_code(i.definition)}{_note(i.comment)}" for i in t.indexes])
    out += _listing("Triggers:", [f"`{tr.name}`: {_sentence(tr.comment)} {_code(tr.definition)}"
                                  for tr in t.triggers])
    out += ["Grants:", ""]
    out += [f"- {grant_in_words(g)}" for g in t.grants] or ["- none (only the owner)"]
    out.append("")
    if t.rls_enabled or t.policies:
        out += ["Policies:", ""]
        out += [f"- {policy_in_words(p)}" for p in t.policies] or ["- none: no row is visible to non-owners"]
        out.append("")
    return out


def _schema(s: Schema) -> list[str]:
    out = [f'<a id="{anchor("schema " + s.name)}"></a>', "", f"## Schema `{s.name}`", ""]
    out += [_sentence(s.comment), ""]
    if s.name in SCHEMA_NOTES:
        out += [SCHEMA_NOTES[s.name], ""]
    out += ["Usage granted to: " + (", ".join(s.usage) if s.usage else "nobody but its owner") + ".", ""]
    if s.tables:
        out += [f"### Tables in `{s.name}`", ""]
    for t in s.tables:
        out += _table(t)
    if s.enums:
        out += [f"### Enum types in `{s.name}`", ""]
        for e in s.enums:
            out += [f'<a id="{anchor(e.schema + "." + e.name)}"></a>', "", f"#### `{e.schema}.{e.name}`", "",
                    _sentence(e.comment), "", "Values, in order: " + ", ".join(f"`{v}`" for v in e.values), ""]
    if s.functions:
        out += [f"### Functions in `{s.name}`", ""]
        for f in s.functions:
            out += [f'<a id="{anchor(f.signature)}"></a>', "", f"#### `{f.signature}`", "", _sentence(f.comment), ""]
            out += [*function_in_words(f), ""]
    return out


def _links(items: Iterable[str]) -> str:
    return ", ".join(f"[`{name}`](#{anchor(name)})" for name in items)


def render_reference(catalog: Catalog, header: str) -> str:
    out = ["<!-- " + header + " -->", "", "# Schema reference", "",
           header, "", "Every description below is the object's `COMMENT` in the database.", ""]
    if catalog.extensions:
        out += ["Extensions: " + ", ".join(f"`{n}` {v} (schema `{s}`)" for n, s, v in catalog.extensions) + ".", ""]
    out += ["## Contents", ""]
    for s in catalog.schemas:
        out.append(f"- [Schema `{s.name}`](#{anchor('schema ' + s.name)}): {len(s.tables)} tables, "
                   f"{len(s.enums)} enum types, {len(s.functions)} functions")
        if s.tables:
            out.append("  - tables: " + _links(t.qualified for t in s.tables))
        if s.enums:
            out.append("  - enum types: " + _links(f"{e.schema}.{e.name}" for e in s.enums))
        if s.functions:
            out.append("  - functions: " + _links(f.signature for f in s.functions))
    out.append("")
    for s in catalog.schemas:
        out += _schema(s)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
