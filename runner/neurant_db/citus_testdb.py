"""A throwaway database distributed over a Citus cluster, for `neurant-db --profile citus test`.

Citus does not propagate CREATE DATABASE: a distributed database is created on the
coordinator and on every worker, `create extension citus` is run in it on every node, and
the nodes are registered again in it (pg_dist_node is per database). The cluster is the one
the coordinator's maintenance database knows (its own pg_dist_node: the coordinator with
group 0, the active primary workers)."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.conninfo import make_conninfo

from .database import connect, with_database

NODES = """
select nodename, nodeport, groupid = 0 from pg_catalog.pg_dist_node
 where isactive and noderole = 'primary' order by groupid, nodeid
"""


@dataclass(frozen=True)
class CitusNodes:
    coordinator: tuple[str, int]
    workers: list[tuple[str, int]]


def cluster_nodes(base: str) -> CitusNodes | None:
    """The coordinator and workers registered in the database of `base` (None: no Citus
    there, or no worker)."""
    with connect(base) as conn:
        row = conn.execute("select to_regclass('pg_catalog.pg_dist_node') is not null").fetchone()
        if not (row and row[0]):
            return None
        rows = conn.execute(NODES).fetchall()
    coordinator = [(str(h), int(p)) for h, p, is_coord in rows if is_coord]
    workers = [(str(h), int(p)) for h, p, is_coord in rows if not is_coord]
    if not coordinator or not workers:
        return None
    return CitusNodes(coordinator[0], workers)


def node_url(base: str, node: tuple[str, int]) -> str:
    """`base` (user, password, database, options) pointed at `node`."""
    return make_conninfo(base, host=node[0], port=str(node[1]))


def create_distributed_database(base: str, name: str, nodes: CitusNodes) -> None:
    """Create `name` on every node with the citus extension, and register the workers."""
    for node in nodes.workers:
        with connect(node_url(base, node)) as conn:
            conn.execute(f'create database "{name}"')
        with connect(with_database(node_url(base, node), name)) as conn:
            conn.execute("create extension citus")
    with connect(base) as conn:
        conn.execute(f'create database "{name}"')
    with connect(with_database(base, name)) as conn:
        conn.execute("create extension citus")
        conn.execute("select pg_catalog.citus_set_coordinator_host(%s, %s)", nodes.coordinator)
        for host, port in nodes.workers:
            conn.execute("select pg_catalog.citus_add_node(%s, %s)", (host, port))


def drop_distributed_database(base: str, name: str, nodes: CitusNodes) -> None:
    """Drop `name` on the coordinator and every worker (each that has it)."""
    for url in [base, *(node_url(base, node) for node in nodes.workers)]:
        with connect(url) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
