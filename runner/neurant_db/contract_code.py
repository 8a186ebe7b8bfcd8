"""docs/contract.ts and docs/contract_types.py: the tables, enums and RPCs of the contract
(contract.py's JSON) as TypeScript types and Python TypedDicts, in the contract's order.

Types: text-like, uuid, dates and times, numeric and bigint are strings in TypeScript (as
node-postgres returns them); pgvector's vector is its text form; json/jsonb is `Json`.
A nullable column is `T | null` / `T | None`. Names: a table or enum of `public` is
PascalCase of its name (`public.chatbots` -> `Chatbots`), of another schema prefixed with
the schema (`ArchiveMessagesArchived`); an RPC's arguments are `<Name>Args`, its result
`<Name>Returns` (a row type `<Name>Row` for table and record results).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TS_SCALARS = {"integer": "number", "smallint": "number", "real": "number", "double precision": "number",
              "boolean": "boolean", "json": "Json", "jsonb": "Json", "void": "void", "record": "unknown"}
PY_SCALARS = {"uuid": "uuid.UUID", "date": "datetime.date", "timestamp with time zone": "datetime.datetime",
              "timestamp without time zone": "datetime.datetime", "time without time zone": "datetime.time",
              "interval": "datetime.timedelta", "integer": "int", "smallint": "int", "bigint": "int",
              "real": "float", "double precision": "float", "numeric": "decimal.Decimal", "boolean": "bool",
              "json": "Json", "jsonb": "Json", "bytea": "bytes", "void": "None", "record": "Any"}


def pascal(qualified: str) -> str:
    schema, _, name = qualified.rpartition(".")
    words = ([] if schema in ("", "public") else [schema]) + name.split("_")
    return "".join(w[:1].upper() + w[1:] for w in words if w)


def _base(pg_type: str) -> tuple[str, int]:
    """The type without modifiers, and its array depth."""
    depth = pg_type.count("[]")
    return re.sub(r"\(.*?\)", "", pg_type.replace("[]", "")).strip(), depth


def ts_type(pg_type: str, enums: set[str]) -> str:
    base, depth = _base(pg_type)
    name = pascal(base) if base in enums else TS_SCALARS.get(base, "string")
    return name + "[]" * depth


def py_type(pg_type: str, enums: set[str]) -> str:
    base, depth = _base(pg_type)
    name = pascal(base) if base in enums else PY_SCALARS.get(base, "str")
    for _ in range(depth):
        name = f"list[{name}]"
    return name


def _ts_fields(columns: list[dict[str, Any]], enums: set[str], *, optional: bool = False) -> list[str]:
    return [f"  {c['name']}{'?' if optional and c['has_default'] else ''}: {ts_type(c['type'], enums)}"
            + (" | null" if c["nullable"] else "") + ";" for c in columns]


@dataclass(frozen=True)
class Language:
    type: Callable[[str, set[str]], str]
    many: str  # "{}[]" or "list[{}]"
    nullable: str  # "{} | null" or "{} | None"
    nothing: str  # void or None


TS = Language(ts_type, "{}[]", "{} | null", "void")
PY = Language(py_type, "list[{}]", "{} | None", "None")


def returns(rpc: dict[str, Any], enums: set[str], lang: Language) -> str:
    """An RPC's result type: its row type (a list of them for table and set results), else
    the scalar type (nullable: a function may return null) or nothing."""
    if rpc["columns"]:
        row = f"{pascal(rpc['name'])}Row"
        return row if rpc["returns"] == "record" else lang.many.format(row)
    t = lang.type(rpc["return_type"] or "void", enums)
    if rpc["returns"] == "set":
        return lang.many.format(t)
    return t if t == lang.nothing else lang.nullable.format(t)


def _member_delete_note(table: dict[str, Any]) -> str:
    return (f"Members delete rows of {table['name']} through {table['member_delete']} (rpc): "
            "authenticated holds no DELETE on it, so a DELETE request is refused (42501).")


def render_ts(contract: dict[str, Any]) -> str:
    enums = set(contract["enums"])
    out = [f"// {contract['generated_by']}", "",
           "export type Json = string | number | boolean | null | { [key: string]: Json } | Json[];", ""]
    for name, values in contract["enums"].items():
        out.append(f"export type {pascal(name)} = " + " | ".join(f'"{v}"' for v in values) + ";")
    out.append("")
    for t in contract["tables"]:
        out += [*([f"// {_member_delete_note(t)}"] if "member_delete" in t else []),
                f"/** {t['name']} */", f"export interface {pascal(t['name'])} {{",
                *_ts_fields(t["columns"], enums), "}", ""]
    for rpc in contract["rpcs"]:
        name = pascal(rpc["name"])
        out += [f"/** {rpc['name']}: executable by {', '.join(rpc['executable_by'])} */",
                f"export interface {name}Args {{", *_ts_fields(rpc["arguments"], enums, optional=True), "}"]
        if rpc["columns"]:
            out += [f"export interface {name}Row {{", *_ts_fields(rpc["columns"], enums), "}"]
        out += [f"export type {name}Returns = {returns(rpc, enums, TS)};", ""]
    out.append("export interface Database {")
    for schema in dict.fromkeys(t["name"].split(".")[0] for t in contract["tables"]):
        out.append(f"  {schema}: {{")
        out.append("    Tables: {")
        out += [f"      {t['name'].split('.', 1)[1]}: {{ Row: {pascal(t['name'])} }};"
                for t in contract["tables"] if t["name"].startswith(schema + ".")]
        out.append("    };")
        if schema == "public":
            out.append("    Functions: {")
            by_name: dict[str, list[str]] = {}
            for rpc in contract["rpcs"]:
                n = pascal(rpc["name"])
                by_name.setdefault(rpc["name"].split(".", 1)[1], []).append(
                    f"{{ Args: {n}Args; Returns: {n}Returns }}")
            out += [f"      {k}: {' | '.join(v)};" for k, v in by_name.items()]
            out.append("    };")
        out.append("  };")
    out.append("}")
    return "\n".join(out) + "\n"


def _py_class(name: str, columns: list[dict[str, Any]], enums: set[str], doc: str,
              *, optional: bool = False) -> list[str]:
    def annotation(c: dict[str, Any]) -> str:
        t = py_type(c["type"], enums) + (" | None" if c["nullable"] else "")
        return f"NotRequired[{t}]" if optional and c["has_default"] else t

    if any(keyword.iskeyword(c["name"]) or not c["name"].isidentifier() for c in columns):
        fields = ", ".join(f'"{c["name"]}": {annotation(c)}' for c in columns)
        return [f"{name} = TypedDict(\"{name}\", {{{fields}}})  # {doc}", "", ""]
    body = [f"    {c['name']}: {annotation(c)}" for c in columns]
    return [f"class {name}(TypedDict):", f'    """{doc}"""', *(["", *body] if body else []), "", ""]


def render_py(contract: dict[str, Any]) -> str:
    enums = set(contract["enums"])
    out = [f'"""{contract["generated_by"]}"""', "",
           "import datetime", "import decimal", "import uuid",
           "from typing import Any, Literal, NotRequired, TypedDict", "", "Json = Any", ""]
    for name, values in contract["enums"].items():
        out.append(f"{pascal(name)} = Literal[" + ", ".join(f'"{v}"' for v in values) + "]")
    out += ["", ""]
    for t in contract["tables"]:
        note = f" {_member_delete_note(t)}" if "member_delete" in t else ""
        out += _py_class(pascal(t["name"]), t["columns"], enums, f"A row of {t['name']}.{note}")
    for rpc in contract["rpcs"]:
        name = pascal(rpc["name"])
        out += _py_class(f"{name}Args", rpc["arguments"], enums,
                         f"Arguments of {rpc['name']} (executable by {', '.join(rpc['executable_by'])}).",
                         optional=True)
        if rpc["columns"]:
            out += _py_class(f"{name}Row", rpc["columns"], enums, f"A row {rpc['name']} returns.")
        out += [f"{name}Returns = {returns(rpc, enums, PY)}", "", ""]
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
