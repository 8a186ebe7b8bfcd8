"""`citus.placement_policies` of `neurant-db doctor --profile citus`, on a real Citus
cluster: every shard placement holds its table's policies in the form
`private.citus_shard_policies()` (seeds/3995) writes, and row level security as its table.

Citus makes the placements of a shard move, split or rebalance (and those of a node added
later) from the table's own policies, in which the helpers are called bare (Citus refuses a
subquery in a policy of a distributed table). Such a placement is still correct, but each
helper runs per row where it filters and again at planning (docs/scale-out.md, "Reads under
RLS"), until `select private.citus_shard_policies();` runs again: a warning. A placement
without one of its table's policies, with one the table lacks, with a condition, command,
role or permissive flag other than the table's, or without row level security enabled and
forced where its table has it, is an error: access on that shard is not what the table says.

One query per node (`run_command_on_all_nodes`, through the coordinator: nothing connects to
the workers directly) compares each placement the node holds (pg_dist_placement of its group)
with the table's shell on the same node, so both are deparsed by the same server under the
same search_path (pg_catalog, set for the query: every name qualified). A placement's
condition is its table's when, with each `( SELECT <helper>() AS <name>)` (and the cast
seeds/3995 writes after it) unwrapped, the texts are equal; it is in the rewritten form when
no helper call (`public.`/`private.`/`auth.<name>()`) is left bare. Without Citus (no
pg_dist_placement) the check reports nothing; a node that cannot be read is a warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from .doctor_finding import Finding

CHECK = "citus.placement_policies"
REWRITE = "select private.citus_shard_policies();"
# A helper call as seeds/3995 writes it, deparsed, and one left bare (tests/test_citus_cluster_suite.py).
WRAPPED_CALL = (r"\( SELECT ((?:public|private|auth)\.[a-z_][a-z0-9_]*\(\)) AS [a-z_][a-z0-9_]*\)"
                r"(?:::[a-z_.]+(?:\[\])?)?")
BARE_CALL = r"(?<!SELECT )(?:public|private|auth)\.[a-z_][a-z0-9_]*\(\)"

# Run on each node. run_command_on_all_nodes sends one statement and reads its first result,
# so the search_path is set inside it: the CASE condition runs before the subquery of its
# THEN (an InitPlan, evaluated when first needed). Rows: one per problem of a placement
# held by this node, with the statement that mends it on this node (`fix`).
NODE_QUERY = r"""
select case when pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true) <> '' then (
with placement as (
  select s.logicalrelid as rel, s.shardid,
         pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid, false)) as shard
    from pg_dist_shard s join pg_dist_placement p on p.shardid = s.shardid
   where p.groupid = (select g.groupid from pg_dist_local_group g)
),
shape as (
  select p.polrelid as rel, p.polname::text as name, p.polcmd, p.polpermissive, p.polroles,
         coalesce(pg_get_expr(p.polqual, p.polrelid), '') as using_expr,
         coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '') as check_expr,
         format(' as %s for %s to %s', case when p.polpermissive then 'permissive' else 'restrictive' end,
                case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                              when 'd' then 'delete' else 'all' end,
                (select string_agg(case when r.oid = 0 then 'public' else quote_ident(r.rolname) end, ', '
                                   order by r.oid)
                   from unnest(p.polroles) x(oid) left join pg_roles r on r.oid = x.oid))
           || coalesce(' using (' || pg_get_expr(p.polqual, p.polrelid) || ')', '')
           || coalesce(' with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '') as body
    from pg_policy p
   where p.polrelid in (select x.rel from placement x union all select x.shard from placement x)
),
compared as (
  select pl.rel, pl.shardid, pl.shard, x.*
    from placement pl
    cross join lateral (
      select t.name as table_policy, s.name as shard_policy, t.body as table_body,
             t.polcmd = s.polcmd and t.polpermissive = s.polpermissive and t.polroles = s.polroles
               and regexp_replace(s.using_expr, %(wrapped)s, '\1', 'g') = t.using_expr
               and regexp_replace(s.check_expr, %(wrapped)s, '\1', 'g') = t.check_expr as same,
             s.using_expr ~ %(bare)s or s.check_expr ~ %(bare)s as bare
        from (select * from shape a where a.rel = pl.rel) t
        full join (select * from shape b where b.rel = pl.shard) s on s.name = t.name) x
),
problem as (
  select pl.rel, pl.shardid, null::regclass as shard, 'missing' as kind, null::text as policy, null::text as fix
    from placement pl where pl.shard is null
  union all
  select pl.rel, pl.shardid, pl.shard, 'rls', null,
         format('alter table %s enable row level security, force row level security;', pl.shard)
    from placement pl join pg_class t on t.oid = pl.rel join pg_class s on s.oid = pl.shard
   where (t.relrowsecurity and not s.relrowsecurity) or (t.relforcerowsecurity and not s.relforcerowsecurity)
  union all
  select c.rel, c.shardid, c.shard,
         case when c.shard_policy is null then 'no_policy' when c.table_policy is null then 'extra_policy'
              when not c.same then 'differs' else 'bare' end,
         coalesce(c.table_policy, c.shard_policy),
         case when c.shard_policy is null
              then format('create policy %I on %s%s;', c.table_policy, c.shard, c.table_body)
              when c.table_policy is null then format('drop policy %I on %s;', c.shard_policy, c.shard)
              when not c.same then format('drop policy %I on %s; create policy %I on %s%s;',
                                          c.shard_policy, c.shard, c.table_policy, c.shard, c.table_body)
         end
    from compared c
   where c.shard is not null
     and (c.shard_policy is null or c.table_policy is null or not c.same or c.bare)
)
select coalesce(json_agg(json_build_object('table', p.rel::regclass::text, 'shardid', p.shardid,
                                           'shard', p.shard::text, 'kind', p.kind, 'policy', p.policy,
                                           'fix', p.fix)
                         order by p.rel::regclass::text, p.shardid, p.kind, p.policy), '[]')::text
  from problem p) end
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
    row = conn.execute("select pg_catalog.to_regclass('pg_catalog.pg_dist_placement') is not null "
                       "and pg_catalog.to_regprocedure('pg_catalog.run_command_on_all_nodes(text, boolean, boolean)') "
                       "is not null").fetchone()
    return bool(row and row[0])


def placement_policy_findings(conn: psycopg.Connection) -> Iterator[Finding]:
    """One finding per placement whose policies or row level security differ from what its
    table and private.citus_shard_policies() give it (module docstring)."""
    if not _has_citus(conn):
        return
    nodes = {int(i): f"node {host}:{port}" + (" (coordinator)" if group == 0 else "")
             for i, host, port, group in conn.execute(
                 "select nodeid, nodename, nodeport, groupid from pg_catalog.pg_dist_node").fetchall()}
    query = NODE_QUERY.replace("%(wrapped)s", "'" + WRAPPED_CALL + "'").replace("%(bare)s", "'" + BARE_CALL + "'")
    try:
        rows = conn.execute("select nodeid, success, result from pg_catalog.run_command_on_all_nodes(%s)",
                            (query,)).fetchall()
    except psycopg.Error as exc:
        yield Finding("warning", CHECK, "run_command_on_all_nodes",
                      f"the placements' policies could not be read: {str(exc).strip().splitlines()[0]}",
                      "Run doctor as a role that may call run_command_on_all_nodes (the cluster's superuser).")
        return
    for nodeid, success, result in rows:
        node = nodes.get(int(nodeid), "the coordinator" if int(nodeid) == 0 else f"node {nodeid}")
        if not success:
            yield Finding("warning", CHECK, node,
                          f"the policies of the placements on {node} could not be read: {result}",
                          "Check that the node is reachable, then run doctor again.")
            continue
        by_shard: dict[int, PlacementProblems] = {}
        for row in json.loads(result):
            shardid = int(row["shardid"])
            table = str(row["table"])
            shard = str(row["shard"] or f"{table}_{shardid}")
            p = by_shard.setdefault(shardid, PlacementProblems(table, shardid, shard, node, {}, []))
            p.kinds.setdefault(str(row["kind"]), [])
            if row["policy"]:
                p.kinds[str(row["kind"])].append(str(row["policy"]))
            if row["fix"]:
                p.fixes.append(str(row["fix"]))
        for shardid in sorted(by_shard):
            yield by_shard[shardid].finding()
