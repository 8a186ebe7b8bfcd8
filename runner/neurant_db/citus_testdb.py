"""A throwaway database distributed over a Citus cluster, for `neurant-db --profile citus test`.

Citus does not propagate CREATE DATABASE: a distributed database is created on the
coordinator and on every worker, `create extension citus` is run in it on every node, and
the nodes are registered again in it (pg_dist_node is per database). The cluster is the one
the coordinator's maintenance database knows (its own pg_dist_node: the coordinator with
group 0, the active primary workers)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
from psycopg import sql
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
            drop_citus_database(conn, name)


def drop_citus_database(conn: psycopg.Connection, name: str, attempts: int = 40) -> None:
    """Drop database `name` (if it exists) on the node of `conn`, whoever is connected to it.

    `drop database ... with (force)` alone loses a race on a node with Citus: Citus stops the
    database's maintenance daemon first, but any backend still in the database (one the drop
    is about to terminate, or a connection another node's backend opened) starts it again,
    and a daemon that connects after the terminations counts as "1 other session" (55006).
    Closing the database's doors first keeps the daemon out (it does not bypass
    `allow_connections`); the drop is retried while the last sessions leave."""
    row = conn.execute("select 1 from pg_catalog.pg_database where datname = %s", (name,)).fetchone()
    if row is None:
        return
    conn.execute(sql.SQL("alter database {} with allow_connections false").format(sql.Identifier(name)))
    for attempt in range(attempts):
        try:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            return
        except psycopg.errors.ObjectInUse:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)



ROLE_SETTINGS = """
select r.rolname::text, c.setting from pg_catalog.pg_db_role_setting s
  left join pg_catalog.pg_roles r on r.oid = s.setrole join pg_catalog.pg_database d on d.oid = s.setdatabase
  cross join lateral pg_catalog.unnest(s.setconfig) c(setting)
 where d.datname = %s
"""


def copy_database_settings(conn: psycopg.Connection, template: str, name: str) -> None:
    """Give database `name` the settings of database `template` and its roles' settings in it
    (alter database / alter role ... in database ... set): `create database ... template`
    leaves them with the template."""
    for role, setting in conn.execute(ROLE_SETTINGS, (template,)).fetchall():
        key, _, value = str(setting).partition("=")
        who = sql.SQL("role {} in database {}").format(sql.Identifier(role), sql.Identifier(name)) \
            if role else sql.SQL("database {}").format(sql.Identifier(name))
        conn.execute(sql.SQL("alter {} set {} = {}").format(
            who, sql.SQL(".").join(sql.Identifier(k) for k in key.split(".")), sql.Literal(value)))


# Citus records the database itself in pg_dist_object (once an `alter database ... set` was
# propagated), by its oid; pg_database is shared, so in a copy that row names the template.
# Activating a node added later sends it by name (citus_internal.add_object_metadata), and the
# node, which has the copy but not the template, refuses: "database ... does not exist".
OWN_DATABASE_OBJECT = """
update pg_catalog.pg_dist_object
   set objid = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
 where classid = 'pg_catalog.pg_database'::pg_catalog.regclass
   and objid = (select d.oid from pg_catalog.pg_database d where d.datname = %s)
"""


def copy_distributed_database(base: str, template: str, name: str, nodes: CitusNodes, attempts: int = 40) -> None:
    """Create `name` as a copy of the distributed database `template` on every node at once
    (each node's part: the coordinator's metadata, each worker's shards), so a suite that
    commits can run on the copy and leave `template` as it was. `template` takes no
    connection while it is copied (Citus's maintenance daemon, which reconnects to every
    database with the extension, is sent away first, again while one is still there) and takes
    them again afterwards. The
    database's settings, and its roles' settings in it, are given to the copy too, and Citus's
    record of the database as a distributed object names the copy (OWN_DATABASE_OBJECT)."""
    def copy(url: str) -> None:
        with connect(url) as conn:
            conn.execute(f'alter database "{template}" with allow_connections false')
            try:
                for attempt in range(attempts):
                    conn.execute("select pg_catalog.pg_terminate_backend(a.pid) from pg_catalog.pg_stat_activity a "
                                 "where a.datname = %s and a.pid <> pg_catalog.pg_backend_pid()", (template,))
                    try:
                        conn.execute(f'create database "{name}" template "{template}" strategy file_copy')
                        break
                    except psycopg.errors.ObjectInUse:
                        # a maintenance daemon that got in before the doors closed and was not
                        # yet listed when the others were sent away (drop_citus_database)
                        if attempt == attempts - 1:
                            raise
                        time.sleep(0.25)
            finally:
                conn.execute(f'alter database "{template}" with allow_connections true')
            copy_database_settings(conn, template, name)
        with connect(with_database(url, name)) as conn:
            conn.execute(OWN_DATABASE_OBJECT, (template,))

    with ThreadPoolExecutor(max_workers=1 + len(nodes.workers)) as pool:
        for done in [pool.submit(copy, url) for url in [base, *(node_url(base, n) for n in nodes.workers)]]:
            done.result()
