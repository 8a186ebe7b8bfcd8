"""A real Citus cluster started by the tests: Debian PostgreSQL 15 with the vendored Citus
13.2.2 and pgvector 0.8.6 (../shared/vendor, built by its build-pg15-extensions.sh, cached),
one coordinator and two workers on three free loopback ports, trust on loopback only.

The three initdb'd data directories are made once and kept as a template under
/var/tmp/neurant-citus-<key> (key: the vendored tarballs, the server's version); each
session copies them into a temporary folder, starts the three servers there, and stops
and deletes them afterwards. `create extension citus` is run in the maintenance database
`postgres` of every node and the workers are registered there: that is what
`neurant-db --profile citus test` reads to create each throwaway database on every node
(runner/neurant_db/testdb.py). `extra_worker` starts one more worker the same way, for a test
that adds a node to the running cluster."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from neurant_db.citus_testdb import CitusNodes

from .debian_pg import debian_bin, ensure_debian_package, missing_server_reason, server_user, vendor_dir

MAJOR = 15
NODES = ("coordinator", "worker1", "worker2")
PGTAP_FILES = [Path(f"/usr/share/postgresql/{MAJOR}/extension/pgtap.control")]
CITUS_FILES = [Path(f"/usr/lib/postgresql/{MAJOR}/lib/citus.so"),
               Path(f"/usr/share/postgresql/{MAJOR}/extension/citus.control"),
               Path(f"/usr/lib/postgresql/{MAJOR}/lib/vector.so")]


def ci_requires_cluster() -> bool:
    """Under CI=true a cluster that cannot be had fails the suite instead of skipping it."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_reason() -> str | None:
    """Why no Citus cluster can be started here (None when it can), in one line. Builds and
    installs the vendored extensions (cached) and pgTAP for PostgreSQL 15 when root."""
    vendor = vendor_dir()
    script = vendor / "build-pg15-extensions.sh"
    if not script.is_file():
        return f"no vendored Citus: {script} is missing (set NEURANT_VENDOR to the vendor folder)"
    if os.geteuid() != 0:
        if missing_server_reason(MAJOR) or not all(f.exists() for f in CITUS_FILES):
            return "Citus for PostgreSQL 15 is not installed and building it needs root " \
                   f"(run {script} as root)"
    else:
        done = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=1800)
        if done.returncode != 0:
            return f"{script} failed: {(done.stderr or done.stdout).strip()[-300:]}"
    reason = missing_server_reason(MAJOR)
    if reason:
        return reason
    if server_user() is None and os.geteuid() == 0:
        return "no unprivileged system user (postgres, nobody) to run PostgreSQL as"
    return ensure_debian_package(f"postgresql-{MAJOR}-pgtap", PGTAP_FILES)


def _version_key() -> str:
    h = hashlib.sha256()
    for tarball in sorted(vendor_dir().glob("*.tar.gz")):
        h.update(tarball.name.encode())
        h.update(str(tarball.stat().st_size).encode())
    version = subprocess.run([str(debian_bin(MAJOR) / "postgres"), "--version"],
                             capture_output=True, text=True, check=True).stdout
    h.update(version.encode())
    for f in CITUS_FILES:
        h.update(str(f.stat().st_mtime_ns).encode())
    return h.hexdigest()[:16]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class CitusCluster:
    ports: dict[str, int]

    def url(self, node: str = "coordinator", database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.ports[node]}/{database}"

    @property
    def worker_ports(self) -> list[int]:
        return [self.ports[n] for n in NODES[1:]]


def _run(args: list[str | Path], user: str | None, cwd: Path) -> None:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, user=user, cwd=cwd,
                          timeout=180, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {done.stderr.strip()[-1000:]}")


def _template(user: str | None) -> Path:
    """The cached initdb'd data directories (made once per key, under a lock)."""
    root = Path(os.environ.get("NEURANT_CITUS_CACHE", "/var/tmp")) / f"neurant-citus-{_version_key()}"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "ready").is_file():
            return root
        work = Path(tempfile.mkdtemp(prefix="initdb-", dir=root))
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(work, entry.pw_uid, entry.pw_gid)
        for node in NODES:
            _run([debian_bin(MAJOR) / "initdb", "-D", work / node, "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync"], user, work)
        for node in NODES:
            shutil.move(str(work / node), str(root / node))
        shutil.rmtree(work, ignore_errors=True)
        (root / "ready").write_text("", encoding="utf-8")
    return root


def _configure(data: Path) -> None:
    """Loopback only, trust there; Citus preloaded, its node connections without TLS."""
    (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n",
                                      encoding="utf-8")
    with (data / "postgresql.conf").open("a", encoding="utf-8") as f:
        f.write("shared_preload_libraries = 'citus'\nlisten_addresses = '127.0.0.1'\n"
                "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n"
                "max_connections = 300\nmax_prepared_transactions = 200\n"
                "citus.node_conninfo = 'sslmode=disable'\n")


def _base_dir(user: str | None) -> Path:
    """A temporary folder for data directories, owned by the server's user."""
    base = Path(tempfile.mkdtemp(prefix="neurant-citus-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    return base


def _start(base: Path, node: str, port: int, user: str | None) -> None:
    _run([debian_bin(MAJOR) / "pg_ctl", "-D", base / node, "-l", base / f"{node}.log", "-w", "-t", "60",
          "-o", f"-p {port} -k {base}", "start"], user, base)


def _stop(base: Path, node: str, user: str | None) -> None:
    subprocess.run([str(debian_bin(MAJOR) / "pg_ctl"), "-D", str(base / node), "-m", "immediate", "-w", "stop"],
                   capture_output=True, user=user, timeout=60, check=False)


@contextmanager
def citus_cluster() -> Iterator[CitusCluster]:
    """Start a coordinator and two workers (copies of the cached template); stop and delete
    them afterwards. The caller checks missing_reason() first."""
    user = server_user()
    template = _template(user)
    base = _base_dir(user)
    ports = {node: _free_port() for node in NODES}
    started: list[str] = []
    try:
        _run(["cp", "-a", *[template / n for n in NODES], base], None, base)
        for node in NODES:
            _configure(base / node)
        for node in NODES:
            _start(base, node, ports[node], user)
            started.append(node)
        cluster = CitusCluster(ports)
        for node in NODES:
            with psycopg.connect(cluster.url(node), autocommit=True) as conn:
                conn.execute("create extension if not exists citus")
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("select citus_set_coordinator_host('127.0.0.1', %s)", (ports["coordinator"],))
            for port in cluster.worker_ports:
                conn.execute("select citus_add_node('127.0.0.1', %s)", (port,))
        yield cluster
    finally:
        for node in reversed(started):
            _stop(base, node, user)
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def extra_worker() -> Iterator[int]:
    """One more worker server for a running cluster, started like the cluster's own nodes (a
    copy of the cached template's worker, configured the same): for tests that add a node with
    citus_add_node. Registered nowhere; stopped and deleted afterwards. Yields its port."""
    user = server_user()
    template = _template(user)
    base = _base_dir(user)
    started = False
    try:
        _run(["cp", "-a", template / NODES[-1], base / "worker3"], None, base)
        _configure(base / "worker3")
        port = _free_port()
        _start(base, "worker3", port, user)
        started = True
        yield port
    finally:
        if started:
            _stop(base, "worker3", user)
        shutil.rmtree(base, ignore_errors=True)


def skip_or_fail(reason: str) -> None:
    """A cluster that cannot be had: one clear skip line, or under CI=true a failure (the
    cluster suite must run in CI)."""
    import pytest

    message = f"Citus cluster suite not run: {reason}"
    if ci_requires_cluster():
        pytest.fail(f"{message} (CI=true: the cluster suite must run in CI)", pytrace=False)
    pytest.skip(message)


# The profile the cluster tests migrate with, and the shard count of their databases: with
# 4 shards per distributed table (Citus's default is 32) both workers still hold shards of
# every table and every multi-shard statement spans both, so every placement-level property
# the tests prove holds (routing to one shard, co-location, shard policies, 25001), and
# migrations, database copies and multi-shard statements are several times faster.
MIGRATE_ARGS = ("--profile", "citus", "--embedding-dimensions", "8")
TEST_SHARD_COUNT = 4
# the same for a `neurant-db` process the tests start (libpq sends it with every session)
TEST_SHARDS = {"PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} -c citus.shard_count={TEST_SHARD_COUNT}".strip()}


def _nodes(cluster: CitusCluster) -> CitusNodes:
    from neurant_db.citus_testdb import cluster_nodes

    nodes = cluster_nodes(cluster.url())
    if nodes is None or len(nodes.workers) != 2:
        raise RuntimeError(f"the cluster's coordinator does not list its two workers: {nodes}")
    return nodes


@contextmanager
def distributed_database(cluster: CitusCluster, shard_count: int | None = None) -> Iterator[str]:
    """A fresh database with the citus extension on every node and the workers registered
    (what `neurant-db --profile citus test` creates), its tables distributed into
    `shard_count` shards (None: Citus's default), dropped on every node afterwards."""
    import secrets

    from neurant_db.citus_testdb import create_distributed_database, drop_distributed_database

    base, nodes = cluster.url(), _nodes(cluster)
    name = f"scratch_{secrets.token_hex(4)}"
    create_distributed_database(base, name, nodes)
    try:
        if shard_count is not None:
            with psycopg.connect(cluster.url(database=name), autocommit=True) as conn:
                conn.execute(f'alter database "{name}" set citus.shard_count = {int(shard_count)}')
        yield cluster.url(database=name)
    finally:
        drop_distributed_database(base, name, nodes)


@contextmanager
def migrated_database(cluster: CitusCluster) -> Iterator[str]:
    """A distributed database migrated to the end with MIGRATE_ARGS (no rows), dropped afterwards."""
    from click.testing import CliRunner

    from neurant_db.cli import cli

    with distributed_database(cluster, TEST_SHARD_COUNT) as url:
        result = CliRunner().invoke(cli, ["--database-url", url, *MIGRATE_ARGS, "migrate"])
        if result.exit_code != 0:
            raise RuntimeError(f"migrating the cluster's template database failed:\n{result.output}")
        yield url


@contextmanager
def copy_of(cluster: CitusCluster, template_url: str) -> Iterator[str]:
    """A fresh copy, on every node, of the distributed database `template_url` (tests that
    commit work on it and leave the template as it was), dropped afterwards."""
    import secrets

    from neurant_db.citus_testdb import copy_distributed_database, drop_distributed_database

    base, nodes = cluster.url(), _nodes(cluster)
    name = f"copy_{secrets.token_hex(4)}"
    copy_distributed_database(base, template_url.rsplit("/", 1)[1], name, nodes)
    try:
        yield cluster.url(database=name)
    finally:
        drop_distributed_database(base, name, nodes)


class FileCopies:
    """Fresh copies of a distributed database, one per suite file (each file commits), the
    next made in the background while one runs. They are copied from a copy of their own, so
    the database `source` stays free for the other tests (a copy shuts its template's doors)."""

    def __init__(self, cluster: CitusCluster, source: str, order: list[str]) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        from neurant_db.citus_testdb import cluster_nodes, copy_distributed_database

        nodes = cluster_nodes(cluster.url())
        assert nodes is not None
        self._base, self._nodes, self._order = cluster.url(), nodes, order
        self._copy = copy_distributed_database
        self._source = source.rsplit("/", 1)[1]
        self._template = f"{self._source}_files"
        self._cluster = cluster
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._made: dict[str, Future[str]] = {}
        self._copy(self._base, self._source, self._template, nodes)

    def _start(self, name: str) -> None:
        if name not in self._made:
            target = f"{self._template}_{len(self._made)}"
            self._made[name] = self._pool.submit(lambda: (self._copy(self._base, self._template, target,
                                                                     self._nodes), target)[1])

    @contextmanager
    def take(self, name: str) -> Iterator[str]:
        """A fresh copy for file `name` (dropped afterwards); the next file's is started."""
        from neurant_db.citus_testdb import drop_distributed_database

        self._start(name)
        database = self._made[name].result()
        following = self._order[self._order.index(name) + 1:] if name in self._order else []
        if following:
            self._start(following[0])
        try:
            yield self._cluster.url(database=database)
        finally:
            drop_distributed_database(self._base, database, self._nodes)

    def __enter__(self) -> FileCopies:
        return self

    def __exit__(self, *exc: object) -> None:
        from neurant_db.citus_testdb import drop_distributed_database

        self._pool.shutdown(wait=True)
        for done in self._made.values():
            if done.exception() is None:
                drop_distributed_database(self._base, done.result(), self._nodes)
        drop_distributed_database(self._base, self._template, self._nodes)


def main(argv: list[str]) -> int:
    """`python -m tests.citus_cluster bench [bench options]` (`make bench-citus`): start the
    test cluster (as root, where ../shared/vendor is; cached like the tests') and run
    `neurant-db --profile citus bench` against its coordinator; the cluster is stopped and
    deleted afterwards. A DBA points the bench at a real cluster instead (docs/performance.md)."""
    import sys

    if not argv or argv[0] != "bench":
        print("usage: python -m tests.citus_cluster bench [neurant-db bench options]", file=sys.stderr)
        return 2
    reason = missing_reason()
    if reason:
        print(f"no Citus cluster here: {reason}", file=sys.stderr)
        return 1
    exe = shutil.which("neurant-db") or str(Path(sys.executable).parent / "neurant-db")
    with citus_cluster() as cluster:
        return subprocess.run([exe, "--profile", "citus", "--database-url", cluster.url(), *argv],
                              check=False).returncode


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
