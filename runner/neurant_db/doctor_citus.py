"""The Citus rules of `neurant-db doctor --profile citus`: static catalog checks, run on
plain PostgreSQL, one per thing a real Citus (13.2 on PostgreSQL 15, issue 12) refused.

Every rule reads the placement of each table from citus_layout.table_layout (pg_dist_partition
on Citus, else private.citus_layout, else the default plan). "Sharded" below means
distributed or reference: the rows live in shards on the workers, and policies, triggers
and grants run there, on the shard, as the current role.

Function sources (sql and plpgsql) are read with a conservative text heuristic: comments and
string literals (dollar-quoted ones included) are stripped first, then only names qualified
with an application schema (`public.users`, `private.audit_row_change(`) count. So a
relation named without its schema, or only inside dynamic SQL (EXECUTE format(...)), is not
seen: the house rules qualify every name in trusted code (doctor `trusted.unqualified`), and
dynamic SQL must be reviewed by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .citus_layout import APPLICATION_SCHEMAS, Placement, layout_source, table_layout
from .doctor_finding import Finding
from .doctor_placements import placement_policy_findings, placement_reader_findings
from .sql_code import code_only

NESTED_SETTING = "citus.allow_nested_distributed_execution"
TRIGGER_SETTING = "citus.enable_unsafe_triggers"
TRUE_VALUES = ("on", "true", "yes", "1")
MAX_LISTED = 5

_SCHEMAS = "|".join(APPLICATION_SCHEMAS)
_QUALIFIED = re.compile(rf"\b({_SCHEMAS})\s*\.\s*([a-z_][a-z0-9_$]*)\b(\s*\()?")
_WRITE = re.compile(rf"\b(?:insert\s+into|update|delete\s+from|merge\s+into)\s+(?:only\s+)?"
                    rf"(({_SCHEMAS})\s*\.\s*[a-z_][a-z0-9_$]*)\b")
_INSERT = re.compile(rf"\binsert\s+into\s+(({_SCHEMAS})\s*\.\s*[a-z_][a-z0-9_$]*)\b")
_TABLE_NAME = re.compile(r"\btg_(?:table_name|relname)\b")
_SUBQUERY = re.compile(r"\(\s*select\b|\bexists\s*\(")
_VALUES_END = re.compile(r"\bon\s+conflict\b|\breturning\b|;")
_FUNCID = re.compile(r":funcid (\d+)\b")


@dataclass
class Routine:
    oid: int
    sig: str
    name: str  # schema.name
    config: list[str]
    code: str  # lower case, without comments and string literals
    calls: set[int] = field(default_factory=set)
    relations: set[str] = field(default_factory=set)  # schema.table named anywhere
    writes: set[str] = field(default_factory=set)  # schema.table inserted/updated/deleted

    def sets(self, setting: str) -> bool:
        return any(_is_on(c, setting) for c in self.config)


def _is_on(assignment: str, setting: str) -> bool:
    name, _, value = assignment.partition("=")
    return name.strip().lower() == setting and value.strip().strip("'\"").lower() in TRUE_VALUES


def _listed(items: list[str]) -> str:
    more = len(items) - MAX_LISTED
    return ", ".join(items[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


class Model:
    """The catalog as the rules see it: placements, routines and their references."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.layout = table_layout(conn)
        self.by_oid = {p.oid: p for p in self.layout}
        self.by_name = {p.relation: p for p in self.layout}
        self.routines: dict[int, Routine] = {}
        by_name: dict[str, set[int]] = {}
        for oid, sig, name, config, src in conn.execute("""
            select p.oid, p.oid::regprocedure::text, n.nspname || '.' || p.proname,
                   coalesce(p.proconfig, '{}'), p.prosrc
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            join pg_language l on l.oid = p.prolang
            where n.nspname = any(%s) and l.lanname in ('sql', 'plpgsql')
              and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
            order by 2""", (list(APPLICATION_SCHEMAS),)).fetchall():
            self.routines[oid] = Routine(oid, sig, name, list(config), code_only(src).lower())
            by_name.setdefault(name, set()).add(oid)
        for r in self.routines.values():
            for m in _QUALIFIED.finditer(r.code):
                qualified = f"{m[1]}.{m[2]}"
                if m[3]:
                    r.calls |= by_name.get(qualified, set()) - {r.oid}
                elif qualified in self.by_name:
                    r.relations.add(qualified)
            r.writes = {re.sub(r"\s", "", m[1]) for m in _WRITE.finditer(r.code)} & set(self.by_name)

    def placement(self, oid: int) -> Placement | None:
        return self.by_oid.get(oid)

    def reachable(self, start: int, setting: str = "") -> list[tuple[Routine, list[str], bool]]:
        """Every routine start reaches through qualified calls (itself first), each with the
        chain of signatures that leads to it and whether a routine on that chain (itself
        included) sets `setting` to on. A routine reached both with and without it is listed
        for each."""
        seen: set[tuple[int, bool]] = set()
        out: list[tuple[Routine, list[str], bool]] = []
        stack: list[tuple[int, list[str], bool]] = [(start, [], False)] if start in self.routines else []
        while stack:
            oid, chain, covered = stack.pop()
            r = self.routines[oid]
            covered = covered or bool(setting and r.sets(setting))
            if (oid, covered) in seen:
                continue
            seen.add((oid, covered))
            here = [*chain, r.sig]
            out.append((r, here, covered))
            stack.extend((c, here, covered) for c in sorted(r.calls, reverse=True))
        return out

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()


CitusCheck = Callable[[Model], Iterator[Finding]]
CITUS_CHECKS: list[CitusCheck] = []


def citus_check(fn: CitusCheck) -> CitusCheck:
    CITUS_CHECKS.append(fn)
    return fn


@citus_check
def placements(model: Model) -> Iterator[Finding]:
    """Not a rule: the placement of every table, as info (`--all`, `--json`), and a table of
    the application schemas that private.citus_layout (or pg_dist_partition) does not name:
    it stays local."""
    source = layout_source(model.conn)
    for p in model.layout:
        yield Finding("info", "citus.placement", p.relation,
                      f"{p.describe()} (position {p.position}, from {p.source})" if p.position
                      else f"{p.describe()} (from {p.source})")
        if p.source == "not planned":
            yield Finding("warning", "citus.layout", p.relation,
                          f"not in {source}: it stays a local table on the coordinator",
                          "Add it to private.citus_layout as a reference or distributed table "
                          "(and distribute it).")
    for p in model.layout:
        if p.placement == "distributed" and p.distribution_column and not model.rows(
                "select 1 from pg_attribute where attrelid = %s and attname = %s and not attisdropped",
                p.oid, p.distribution_column):
            yield Finding("error", "citus.layout", p.relation,
                          f"distribution column {p.distribution_column} does not exist",
                          "Name an existing column of the table in private.citus_layout.")


POLICIES = """
select p.polrelid, p.polname, coalesce(p.polqual::text, '') || ' ' || coalesce(p.polwithcheck::text, ''),
       p.polroles::oid[]
from pg_policy p order by p.polrelid::regclass::text, p.polname
"""


def _sharded_policies(model: Model) -> Iterator[tuple[Placement, str, str, list[int]]]:
    for relid, name, tree, roles in model.rows(POLICIES):
        p = model.placement(relid)
        if p and p.sharded:
            yield p, name, tree, list(roles)


@citus_check
def policy_subqueries(model: Model) -> Iterator[Finding]:
    """A policy of a distributed or reference table whose USING or WITH CHECK holds a
    subquery (a SubLink node: `(select f())`, EXISTS, IN (select ...)): Citus refuses to
    create it ("unexpected non-SELECT command in SubLink"). Read from the stored node tree,
    so no text heuristic is involved."""
    for p, name, tree, _roles in _sharded_policies(model):
        if "{SUBLINK" in tree:
            yield Finding("error", "citus.policy_subquery", f"{p.relation}.{name}",
                          f"policy of {p.placement} table {p.relation} contains a subquery: Citus refuses "
                          "it (unexpected non-SELECT command in SubLink)",
                          "Call the context helper directly, without (select ...): "
                          "using (company_id = private.get_user_company_id()), and move any lookup "
                          "into a stable security definer helper.")


@citus_check
def policy_restrictive(model: Model) -> Iterator[Finding]:
    """A restrictive policy of a distributed or reference table: Citus 13.2 recreates the
    policies of a table on its shards (at create_distributed_table, and for each CREATE
    POLICY after it) without AS RESTRICTIVE (commands/policy.c, CreatePolicyCommandForPolicy),
    so on every shard it is ORed with the permissive policies instead of ANDed: it widens
    access where it was meant to narrow it (issue 19: the read-only policies let a supervisor
    write what only an administrador may)."""
    for relid, name in model.rows("select polrelid, polname::text from pg_policy where not polpermissive "
                                  "order by polrelid::regclass::text, polname"):
        p = model.placement(relid)
        if p and p.sharded:
            yield Finding("error", "citus.policy_restrictive", f"{p.relation}.{name}",
                          f"restrictive policy of {p.placement} table {p.relation}: Citus recreates it "
                          "permissive on every shard, where it then admits rows instead of narrowing",
                          "AND its condition into each permissive policy of the same command instead "
                          "(profile citus does so for the read-only check: runner/neurant_db/citus_render.py).")


@citus_check
def policy_functions(model: Model) -> Iterator[Finding]:
    """Functions a policy of a sharded table calls (FuncExpr nodes of the stored quals,
    then every application function they reach by qualified name): one that reads a
    distributed table fails on the shard ("cannot execute a distributed query from a query
    on a shard") unless citus.allow_nested_distributed_execution is on along the call chain,
    and is slow even then; one that reads any other table needs that setting (the shape
    shown to work: a stable security definer helper over a reference table with
    `set citus.allow_nested_distributed_execution = on`). Limits: relations named without
    their schema or in dynamic SQL are not seen."""
    called: dict[int, list[str]] = {}
    for p, name, tree, _roles in _sharded_policies(model):
        for funcid in {int(m) for m in _FUNCID.findall(tree)}:
            if funcid in model.routines:
                called.setdefault(funcid, []).append(f"{p.relation}.{name}")
    distributed_reads: dict[str, tuple[bool, list[str], str]] = {}  # sig -> (covered, tables, used)
    nested: dict[str, tuple[list[str], str]] = {}
    for funcid, policies in sorted(called.items(), key=lambda kv: model.routines[kv[0]].sig):
        for routine, chain, covered in model.reachable(funcid, NESTED_SETTING):
            via = f" (via {' -> '.join(chain)})" if len(chain) > 1 else ""
            used = f"called by policies {_listed(sorted(policies))}{via}"
            distributed = sorted(r for r in routine.relations if model.by_name[r].placement == "distributed")
            others = sorted(r for r in routine.relations if model.by_name[r].placement != "distributed")
            seen = distributed_reads.get(routine.sig)
            if distributed and (seen is None or (seen[0] and not covered)):
                distributed_reads[routine.sig] = (covered, distributed, used)
            if others and not covered and routine.sig not in nested:
                nested[routine.sig] = (others, used)
    for sig, (covered, tables, used) in distributed_reads.items():
        yield Finding("warning" if covered else "error", "citus.policy_reads_distributed", sig,
                      f"reads distributed table(s) {_listed(tables)}, {used}: "
                      + ("a distributed query per shard statement (measured 17-58x slower)" if covered
                         else "cannot execute a distributed query from a query on a shard"),
                      "Read the membership or context from a reference table in a stable security "
                      f"definer helper with set {NESTED_SETTING} = on.")
    for sig, (tables, used) in nested.items():
        yield Finding("error", "citus.policy_nested_execution", sig,
                      f"reads {_listed(tables)} without {NESTED_SETTING} = on, {used}: "
                      "the read fails inside the shard query",
                      f"Add set {NESTED_SETTING} = on to the helper the policy calls "
                      "(create function ... set search_path = pg_catalog, pg_temp "
                      f"set {NESTED_SETTING} = on).")


@citus_check
def placement_policies(model: Model) -> Iterator[Finding]:
    """On a real Citus cluster only (nothing without pg_dist_placement): every shard placement
    holds its table's policies in the (select f()) form private.citus_shard_policies() writes,
    and row level security as its table. A placement Citus made anew from the table's bare
    policies (a shard move, split, rebalance) is a warning; a missing, extra or different
    policy, or row level security off, an error naming the statements that mend it on its
    node (runner/neurant_db/doctor_placements.py)."""
    yield from placement_policy_findings(model.conn)


@citus_check
def placement_readers(model: Model) -> Iterator[Finding]:
    """On a real Citus cluster only: the placement readers of the policy helpers
    (functions/4800) name every shard of private.memberships, public.chatbots and
    public.chatbot_operators; a shard they do not name (made by a split after they were
    written) is a warning: read with a dynamic query, planned at every call, until
    `select private.citus_placement_readers();` runs again (runner/neurant_db/doctor_placements.py)."""
    yield from placement_reader_findings(model.conn)


TRIGGERS = """
select t.tgrelid, t.tgname, t.tgfoid
from pg_trigger t where not t.tgisinternal order by t.tgrelid::regclass::text, t.tgname
"""


def _sharded_triggers(model: Model) -> list[tuple[Placement, str, int]]:
    out = []
    for relid, name, funcid in model.rows(TRIGGERS):
        p = model.placement(relid)
        if p and p.sharded:
            out.append((p, name, funcid))
    return out


def _unsafe_triggers_enabled(model: Model) -> bool:
    for (config,) in model.rows("""
        select s.setconfig from pg_db_role_setting s
        where s.setdatabase in (0, (select d.oid from pg_database d where d.datname = current_database()))"""):
        if any(_is_on(c, TRIGGER_SETTING) for c in config or []):
            return True
    row = model.rows("select coalesce(current_setting(%s, true), '')", TRIGGER_SETTING)
    return bool(row) and str(row[0][0]).lower() in TRUE_VALUES


@citus_check
def triggers_need_unsafe_setting(model: Model) -> Iterator[Finding]:
    """A distributed or reference table with triggers is refused by create_distributed_table
    / create_reference_table unless citus.enable_unsafe_triggers is on (then the triggers run
    on the shards). Accepted: the setting in pg_db_role_setting for this database or for all
    databases (ALTER DATABASE / ALTER ROLE ... SET, any role), or in effect on the doctor's
    own session (postgresql.conf, ALTER SYSTEM). A role setting helps only the roles that
    distribute and write: say which in the deployment notes."""
    if _unsafe_triggers_enabled(model):
        return
    by_table: dict[str, list[str]] = {}
    for p, name, _funcid in _sharded_triggers(model):
        by_table.setdefault(p.relation, []).append(name)
    for table, names in by_table.items():
        yield Finding("error", "citus.unsafe_triggers", table,
                      f"{model.by_name[table].placement} table with triggers ({_listed(names)}) while "
                      f"{TRIGGER_SETTING} is not on: Citus refuses to distribute it",
                      f"Run alter database <name> set {TRIGGER_SETTING} = on (as the cluster "
                      "administrator, before distributing the tables).")


@citus_check
def trigger_functions_on_shards(model: Model) -> Iterator[Finding]:
    """Trigger functions of sharded tables run on the shard: TG_TABLE_NAME (and TG_RELNAME)
    is the shard's name there (table_102008), and a trigger of a distributed table that
    writes a reference or local table fails (a shard cannot modify them). Writes are
    `insert into` / `update` / `delete from` / `merge into` of a qualified table, in the
    trigger function or any function it reaches by qualified name; dynamic SQL is not seen."""
    uses: dict[int, list[str]] = {}
    writers: dict[int, list[str]] = {}
    for p, name, funcid in _sharded_triggers(model):
        uses.setdefault(funcid, []).append(f"{p.relation}.{name}")
        if p.placement == "distributed":
            writers.setdefault(funcid, []).append(f"{p.relation}.{name}")
    for funcid, triggers in sorted(uses.items(), key=lambda kv: kv[0]):
        routine = model.routines.get(funcid)
        if routine and _TABLE_NAME.search(routine.code):
            yield Finding("error", "citus.trigger_table_name", routine.sig,
                          f"uses TG_TABLE_NAME, which is the shard's name on Citus (triggers "
                          f"{_listed(sorted(triggers))})",
                          "Use a constant (a trigger argument naming the table) or the distributed "
                          "table behind TG_RELID instead of TG_TABLE_NAME.")
    for funcid, triggers in sorted(writers.items(), key=lambda kv: kv[0]):
        for routine, chain, _covered in model.reachable(funcid):
            written = sorted(w for w in routine.writes if model.by_name[w].placement != "distributed")
            if written:
                via = f" (via {' -> '.join(chain)})" if len(chain) > 1 else ""
                yield Finding("error", "citus.trigger_writes_reference", routine.sig,
                              f"writes {', '.join(f'{model.by_name[w].placement} table {w}' for w in written)} "
                              f"from triggers of distributed tables ({_listed(sorted(triggers))}){via}: "
                              "a shard cannot modify them",
                              "Keep what the trigger writes in a table distributed by the same column "
                              "(colocated), or write it from the caller on the coordinator.")


@citus_check
def insert_values_subqueries(model: Model) -> Iterator[Finding]:
    """`insert into <sharded table> ... values (..., (select ...), ...)` in any sql/plpgsql
    function (trigger functions, the functions they call, RPCs): Citus refuses it
    ("subqueries are not supported within INSERT queries"). The VALUES list is read up to
    ON CONFLICT / RETURNING / the statement's end, after comments and strings are stripped."""
    for routine in model.routines.values():
        for m in _INSERT.finditer(routine.code):
            target = re.sub(r"\s", "", m[1])
            placement = model.by_name.get(target)
            if not placement or not placement.sharded:
                continue
            rest = routine.code[m.end():]
            values = re.match(r"\s*(\((?:[^()]|\([^()]*\))*\))?\s*(overriding\s+\w+\s+value\s+)?values\b", rest)
            if not values:
                continue
            tail = rest[values.end():]
            end = _VALUES_END.search(tail)
            if _SUBQUERY.search(tail[: end.start() if end else len(tail)]):
                yield Finding("error", "citus.insert_values_subquery", routine.sig,
                              f"insert into {placement.placement} table {target} has a subquery in its "
                              "VALUES: Citus refuses it (subqueries are not supported within INSERT queries)",
                              "Write insert ... select ... instead of values ((select ...)), or compute the "
                              "value into a variable first.")
                break


@citus_check
def unique_keys_hold_distribution_column(model: Model) -> Iterator[Finding]:
    """Primary keys, unique constraints, unique indexes and exclusion constraints of a
    distributed table must include its distribution column (Citus enforces them per shard).
    A `doctor: allow tenant.unique` note does not help here: Citus refuses the table."""
    for p in model.layout:
        if p.placement != "distributed" or not p.distribution_column:
            continue
        for index, kind in model.rows("""
            select i.indexrelid::regclass::text,
                   case when i.indisprimary then 'primary key' when i.indisexclusion then 'exclusion constraint'
                        else 'unique key' end
            from pg_index i
            where i.indrelid = %s and (i.indisunique or i.indisexclusion)
              and not exists (select 1 from pg_attribute a where a.attrelid = i.indrelid
                              and a.attname = %s and a.attnum = any(i.indkey))
            order by 1""", p.oid, p.distribution_column):
            short = index.split(".")[-1]
            yield Finding("error", "citus.unique_key", f"{p.relation} {short}",
                          f"{kind} {short} of distributed table {p.relation} does not include the "
                          f"distribution column {p.distribution_column}: Citus cannot enforce it",
                          f"Add {p.distribution_column} to the key, or keep the global lookup in a "
                          "reference table of its own.")


FKS = """
select k.conname, k.conrelid, k.confrelid, k.confupdtype::text, k.confdeltype::text,
       array(select a.attname::text from unnest(k.conkey) with ordinality c(n, o)
             join pg_attribute a on a.attrelid = k.conrelid and a.attnum = c.n order by c.o),
       array(select a.attname::text from unnest(k.confkey) with ordinality c(n, o)
             join pg_attribute a on a.attrelid = k.confrelid and a.attnum = c.n order by c.o)
from pg_constraint k where k.contype = 'f' order by k.conrelid::regclass::text, k.conname
"""


@citus_check
def foreign_keys(model: Model) -> Iterator[Finding]:
    """Foreign keys Citus refuses: from a reference or local table to a distributed table,
    from a distributed to a local table, or from a reference to a local table
    (citus.fk_placement); between distributed tables without the distribution column at the
    same position on both sides (citus.fk_distribution_column); ON UPDATE actions, or ON
    DELETE SET NULL / SET DEFAULT, on a key that contains the distribution column
    (citus.fk_action). A local table referencing a reference table is a warning: Citus
    accepts it only by turning the local table into a Citus managed table (coordinator in
    the metadata)."""
    for con, relid, frelid, upd, dele, cols, fcols in model.rows(FKS):
        src, dst = model.placement(relid), model.placement(frelid)
        if not src or not dst:
            continue
        obj = f"{src.relation}.{con}"
        pair = f"{src.placement} table {src.relation} -> {dst.placement} table {dst.relation}"
        if (dst.placement == "distributed" and src.placement != "distributed") or \
                (dst.placement == "local" and src.sharded):
            yield Finding("error", "citus.fk_placement", obj,
                          f"foreign key from {pair}: Citus does not support it",
                          "Distribute the referencing table by the same column (colocated), make the "
                          "referenced table a reference table, or check the reference in a trigger.")
        elif src.placement == "local" and dst.placement == "reference":
            yield Finding("warning", "citus.fk_placement", obj,
                          f"foreign key from {pair}: Citus turns the local table into a Citus managed "
                          "table for it (the coordinator must be in the metadata)",
                          "Make the referencing table a reference table, or add the coordinator to "
                          "the metadata.")
        if src.placement == "distributed" and dst.placement == "distributed":
            pos = cols.index(src.distribution_column) if src.distribution_column in cols else -1
            if pos < 0 or fcols[pos] != dst.distribution_column:
                yield Finding("error", "citus.fk_distribution_column", obj,
                              f"foreign key between distributed tables ({pair}) does not pair "
                              f"{src.distribution_column} with {dst.distribution_column}: Citus cannot "
                              "check it within one shard",
                              f"Include the distribution column on both sides: foreign key "
                              f"({src.distribution_column}, ...) references {dst.relation} "
                              f"({dst.distribution_column}, ...).")
        if src.placement == "distributed" and src.distribution_column in cols:
            if upd not in ("a", "r"):
                yield Finding("error", "citus.fk_action", obj,
                              f"ON UPDATE action on a key containing the distribution column "
                              f"{src.distribution_column}: Citus rejects it",
                              "Use on update no action (the default); the distribution column never changes.")
            if dele in ("n", "d"):
                yield Finding("error", "citus.fk_action", obj,
                              f"ON DELETE SET NULL/SET DEFAULT on a key containing the distribution column "
                              f"{src.distribution_column}: Citus rejects it",
                              "Use on delete cascade or no action, and clear a nullable reference in a "
                              "before delete trigger.")


@citus_check
def request_roles_can_log_in(model: Model) -> Iterator[Finding]:
    """Citus opens its connections to the workers as the current role, so every role named
    in a policy of a sharded table, or holding a privilege on one (besides its owner), must
    be LOGIN: a NOLOGIN role reached with SET ROLE fails on the workers."""
    tables: dict[str, set[str]] = {}
    for p, _name, _tree, roles in _sharded_policies(model):
        for role in roles:
            if role:
                tables.setdefault(str(role), set()).add(p.relation)
    for relid, grantee in model.rows("""
        select c.oid, a.grantee from pg_class c, aclexplode(c.relacl) a
        where a.grantee <> 0 and a.grantee <> c.relowner"""):
        granted = model.placement(relid)
        if granted and granted.sharded:
            tables.setdefault(str(grantee), set()).add(granted.relation)
    if not tables:
        return
    for oid, role in model.rows("""
        select r.oid::text, r.rolname from pg_roles r
        where r.oid::text = any(%s) and not r.rolcanlogin and not r.rolsuper order by 2""", list(tables)):
        yield Finding("error", "citus.nologin_role", role,
                      f"role {role} is NOLOGIN but is named in policies or grants of sharded tables "
                      f"({_listed(sorted(tables[oid]))}): Citus connects to the workers as the current "
                      "role, which fails",
                      f"Make it a login role (alter role {role} login) and let the request connections "
                      "authenticate as it, or document the request role that replaces it.")


@citus_check
def insert_grants_cover_defaults(model: Model) -> Iterator[Finding]:
    """A column-listed INSERT grant on a distributed table that omits a column with a
    default (or identity) fails on the shard: Citus fills the default in on the coordinator
    and sends the column explicitly. Grantees with table-level INSERT are fine; generated
    columns are never sent."""
    for p in model.layout:
        if p.placement != "distributed":
            continue
        for role, missing in model.rows("""
            select r.rolname, array_agg(d.attname::text order by d.attnum)
            from pg_roles r
            join pg_attribute d on d.attrelid = %s and d.attnum > 0 and not d.attisdropped
              and (d.atthasdef or d.attidentity <> '') and d.attgenerated = ''
            where exists (select 1 from pg_attribute a, aclexplode(a.attacl) x
                          where a.attrelid = %s and x.grantee = r.oid and x.privilege_type = 'INSERT')
              and not has_table_privilege(r.oid, %s, 'INSERT')
              and not has_column_privilege(r.oid, %s, d.attnum, 'INSERT')
            group by r.rolname order by 1""", p.oid, p.oid, p.oid, p.oid):
            yield Finding("error", "citus.insert_grant_defaults", f"{p.relation} {role}",
                          f"{role} may insert only some columns of distributed table {p.relation}, not the "
                          f"defaulted {_listed(list(missing))}: Citus sends them explicitly and the insert "
                          "fails on the shard",
                          f"Grant insert on those columns too (grant insert ({', '.join(missing)}) on "
                          f"{p.relation} to {role}) and pin their values in a before insert trigger.")


# Declared in the schema, as for the other checks: `doctor: allow <check> <reason>` in the
# COMMENT of the function or role a finding names turns it into info. Only for what is a
# decision, not a refusal: a NOLOGIN role that no request reaches on Citus (its requests
# use a documented LOGIN role), TG_TABLE_NAME only in message text.
ALLOWABLE = ("citus.nologin_role", "citus.trigger_table_name")
_ALLOW = re.compile(r"doctor: allow (citus\.[a-z_]+)\b[:\s]*([^\n;]*)")


def _allowances(model: Model) -> dict[tuple[str, str], str]:
    notes: dict[tuple[str, str], str] = {}
    for obj, note in model.rows("""
        select p.oid::regprocedure::text, obj_description(p.oid, 'pg_proc') from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%s) and obj_description(p.oid, 'pg_proc') like '%%doctor: allow citus.%%'
        union all
        select r.rolname::text, shobj_description(r.oid, 'pg_authid') from pg_roles r
        where shobj_description(r.oid, 'pg_authid') like '%%doctor: allow citus.%%'""",
                                list(APPLICATION_SCHEMAS)):
        for m in _ALLOW.finditer(note):
            if m[1] in ALLOWABLE:
                notes[(m[1], obj)] = m[2].strip() or "see comment"
    return notes


def run_citus_checks(conn: psycopg.Connection) -> list[Finding]:
    model = Model(conn)
    allowed = _allowances(model)
    findings: list[Finding] = []
    for fn in CITUS_CHECKS:
        for f in fn(model):
            reason = allowed.get((f.check, f.object)) if f.level != "info" else None
            findings.append(Finding("info", f.check, f.object, f"allowed on purpose: {reason}")
                            if reason else f)
    return findings
