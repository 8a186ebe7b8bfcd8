"""`citus.placement_policies` of `neurant-db doctor --profile citus`, on a real Citus
cluster: every shard placement holds its table's policies in the form
`private.citus_shard_policies()` writes, and row level security as its table.

Citus makes the placements of a shard move, split or rebalance (and those of a node added
later) from the table's own policies, in which the helpers are called bare (Citus refuses a
subquery in a policy of a distributed table). Such a placement is still correct, but each
helper runs per row where it filters and again at planning (docs/scale-out.md, "Reads under
RLS"), until `select private.citus_shard_policies();` runs again: a warning. A placement
without one of its table's policies, with one the table lacks, with a condition, command,
role or permissive flag other than the table's, or without row level security enabled and
forced where its table has it, is an error: access on that shard is not what the table says.

What differs is read by `private.citus_placement_policy_drift()` (seeds/4500, the one source
the rewrite also uses): one query per node through `run_command_on_all_nodes` (nothing here
connects to the workers), each placement compared with its table's shell on the same node.
Without Citus the check reports nothing; on a cluster database migrated before 4500, or where
a node cannot be read, it is a warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from .doctor_finding import Finding

CHECK = "citus.placement_policies"
REWRITE = "select private.citus_shard_policies();"
DRIFT = """
select d.nodename, d.nodeport, d.relation, d.shardid, d.shard, d.kind, d.policy, d.fix
  from private.citus_placement_policy_drift() d
 order by d.nodename, d.nodeport, d.relation, d.shardid, d.kind, d.policy
"""

_KIND_TEXT = {
    "missing": "its shard relation does not exist on the node",
    "rls": "row level security is not enabled and forced as on its table",
    "no_policy": "missing (its table has it)",
    "extra_policy": "not a policy of its table",
    "differs": "not as its table's (condition, command, roles or permissive flag)",
    "bare": "in the bare form: a helper call not wrapped in (select ...) as private.citus_shard_policies() writes it",
}


@dataclass
class PlacementProblems:
    table: str
    shardid: int
    shard: str
    node: str
    kinds: dict[str, list[str]]  # kind -> policies (empty for missing, rls)
    fixes: list[str]

    def finding(self) -> Finding:
        parts = []
        for kind, policies in self.kinds.items():
            text = _KIND_TEXT[kind].replace("its table", self.table)
            parts.append(f"polic{'y' if len(policies) == 1 else 'ies'} {', '.join(policies)} {text}" if policies
                         else text)
        where = f"placement {self.shard} (shard {self.shardid} of {self.table}) on {self.node}"
        only_bare = set(self.kinds) == {"bare"}
        if only_bare:
            return Finding("warning", CHECK, self.shard,
                           f"{where}: {'; '.join(parts)} (Citus made it from the table's policies: a shard move, "
                           "split or rebalance since the rewrite): correct, but each helper runs per row where it "
                           "filters and again at planning",
                           f"On the coordinator: {REWRITE}")
        fix = f"On {self.node}: {' '.join(self.fixes)} Then, on the coordinator: {REWRITE}" if self.fixes else \
            "Repair the placement (citus_copy_shard_placement from a healthy node), then, on the coordinator: " \
            + REWRITE
        return Finding("error", CHECK, self.shard,
                       f"{where}: {'; '.join(parts)}: access on this shard is not what {self.table}'s policies "
                       "say", fix)


def _has_citus(conn: psycopg.Connection) -> bool:
    row = conn.execute("select pg_catalog.to_regclass('pg_catalog.pg_dist_placement') is not null").fetchone()
    return bool(row and row[0])


def placement_policy_findings(conn: psycopg.Connection) -> Iterator[Finding]:
    """One finding per placement whose policies or row level security differ from what its
    table and private.citus_shard_policies() give it (module docstring)."""
    if not _has_citus(conn):
        return
    present = conn.execute("select pg_catalog.to_regprocedure('private.citus_placement_policy_drift()') "
                           "is not null").fetchone()
    if not (present and present[0]):
        yield Finding("warning", CHECK, "private.citus_placement_policy_drift()",
                      "not in this database (migrated before seeds/4500): the placements' policies are not checked",
                      "Run neurant-db --profile citus migrate.")
        return
    try:
        rows = conn.execute(DRIFT).fetchall()
    except psycopg.Error as exc:
        yield Finding("warning", CHECK, "private.citus_placement_policy_drift()",
                      f"the placements' policies could not be read: {str(exc).strip().splitlines()[0]}",
                      "Run doctor as the cluster's superuser (run_command_on_all_nodes) once every node is reachable.")
        return
    problems: dict[tuple[str, int], PlacementProblems] = {}
    for nodename, nodeport, table, shardid, shard, kind, policy, fix in rows:
        node = f"node {nodename}:{nodeport}"
        p = problems.setdefault((node, int(shardid)), PlacementProblems(
            str(table), int(shardid), str(shard or f"{table}_{shardid}"), node, {}, []))
        p.kinds.setdefault(str(kind), [])
        if policy:
            p.kinds[str(kind)].append(str(policy))
        if fix:
            p.fixes.append(str(fix))
    for key in sorted(problems):
        yield problems[key].finding()


# `citus.placement_readers`: the policy helpers read the local placements of these tables with
# one static query per shard (functions/4800), in readers whose text names every shard
# pg_dist_shard lists. A shard they do not name (a split makes new shard ids) is read with a
# dynamic query, planned at every call: correct, slower, until the readers are written again.
READERS_CHECK = "citus.placement_readers"
READERS_REWRITE = "select private.citus_placement_readers();"
READERS = {"private.memberships": "private.membership_in_placement(text,uuid)",
           "public.chatbots": "private.chatbot_ids_in_placement(text,uuid,uuid)",
           "public.chatbot_operators": "private.chatbot_ids_in_placement(text,uuid,uuid)"}
READ_SHARDS = """
select n.nspname || '.' || c.relname, s.shardid, pg_catalog.shard_name(s.logicalrelid, s.shardid, false)
  from pg_catalog.pg_dist_shard s
  join pg_catalog.pg_class c on c.oid = s.logicalrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where s.logicalrelid in (select pg_catalog.to_regclass(t) from pg_catalog.unnest(%s::text[]) t)
 order by 1, 2
"""


def placement_reader_findings(conn: psycopg.Connection) -> Iterator[Finding]:
    """A warning per shard of private.memberships, public.chatbots or public.chatbot_operators
    whose placement reader (functions/4800) does not name it; nothing without Citus or on a
    database migrated before 4800 (nothing to name)."""
    if not _has_citus(conn):
        return
    texts: dict[str, str] = {}
    for reader in sorted(set(READERS.values())):
        row = conn.execute("select p.prosrc from pg_catalog.pg_proc p "
                           "where p.oid = pg_catalog.to_regprocedure(%s)", (reader,)).fetchone()
        if row is None:
            return
        texts[reader] = str(row[0])
    for table, shardid, shard in conn.execute(READ_SHARDS, (list(READERS),)).fetchall():
        reader = READERS[str(table)]
        if f"from {shard} " not in texts[reader]:
            yield Finding("warning", READERS_CHECK, str(shard),
                          f"shard {shardid} of {table} is not named by {reader} (a split made it after the "
                          "readers were written): the policy helpers read it with a dynamic query, planned at "
                          "every call (docs/scale-out.md, \"Reads under RLS\")",
                          f"On the coordinator: {READERS_REWRITE}")
