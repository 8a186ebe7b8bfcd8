"""A real PgBouncer for the tests: found on PATH or unpacked from Debian's package
(apt-get download, no install), started on loopback in front of the test server.

Shared by the pooled-session tests (tests/test_pooled_sessions.py) and the runner's
pooler and connection tests (tests/test_connections.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from neurant_db.paths import state_dir

PGBOUNCER_PACKAGES = ("pgbouncer", "libc-ares2")  # Debian 12: libc-ares2 is the one library often missing


def pgbouncer_command() -> tuple[list[str], dict[str, str]] | str:
    """How to run pgbouncer: on PATH, or unpacked from the Debian package into
    .neurant/pgbouncer (apt-get download, no install), as the project gets pgTAP.
    Returns the reason instead when neither works."""
    found = shutil.which("pgbouncer")
    if found:
        return [found], {}
    target = state_dir() / "pgbouncer"
    binary = target / "usr" / "sbin" / "pgbouncer"
    if not binary.is_file():
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            return "pgbouncer is not installed and this machine has no apt-get/dpkg-deb"
        target.mkdir(parents=True, exist_ok=True)
        try:
            got = subprocess.run(["apt-get", "download", *PGBOUNCER_PACKAGES], cwd=target, text=True,
                                 capture_output=True, check=False, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"apt-get download {' '.join(PGBOUNCER_PACKAGES)} failed: {exc}"
        debs = sorted(target.glob("*.deb"))
        if got.returncode != 0 or len(debs) < len(PGBOUNCER_PACKAGES):
            return f"apt-get download {' '.join(PGBOUNCER_PACKAGES)} failed: {got.stderr.strip()[-300:]}"
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True, capture_output=True)
    libs = [str(p) for p in (target / "usr" / "lib").glob("*-linux-gnu")]
    env = {"LD_LIBRARY_PATH": ":".join([*libs, os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(":")}
    version = subprocess.run([str(binary), "--version"], env={**os.environ, **env}, text=True,
                             capture_output=True, check=False)
    if version.returncode != 0:
        return f"the unpacked pgbouncer does not run: {version.stderr.strip()[-300:]}"
    return [str(binary)], env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def run_pgbouncer(folder: Path, server_url: str, databases: str, settings: str,
                  *, files: dict[str, str] | None = None) -> Iterator[int]:
    """Start pgbouncer on 127.0.0.1 with `databases` as its [databases] section and
    `settings` appended to its [pgbouncer] section (plus `files` written beside the
    ini; `{folder}` in `settings` names that folder); yields its port and stops it
    afterwards. Skips the test when no pgbouncer can be had or it does not start."""
    how = pgbouncer_command()
    if isinstance(how, str):
        pytest.skip(f"no PgBouncer: {how}")
    command, env = how
    server = conninfo_to_dict(server_url)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
        (folder / name).chmod(0o644)
    port = free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n{databases.strip()}\n\n[pgbouncer]\n{settings.strip().replace('{folder}', str(folder))}\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n",  # logs go to stderr
        encoding="utf-8")
    config.chmod(0o644)
    if os.geteuid() == 0:  # pgbouncer refuses to run as root: run as the owner of the server's socket
        host = str(server.get("host", ""))
        owner = os.stat(host).st_uid if host.startswith("/") else pwd.getpwnam("nobody").pw_uid
        command = [*command, "-u", pwd.getpwuid(owner).pw_name]
    proc = subprocess.Popen([*command, str(config)], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.skip(f"pgbouncer exited at start: {out[-300:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def server_line(server: Mapping[str, object], password: str | None) -> str:
    """The connection string of a [databases] entry for the test server: its host, port
    and user, and its password when it has one (the test server's password is in no URL:
    neurant_db.passfile), quoted for pgbouncer's parser."""
    line = f"host={server.get('host', 'localhost')} port={server.get('port', 5432)} user={server['user']}"
    if password:
        line += " password='" + password.replace("'", "''") + "'"
    return line


def wait_for(conninfo: str, seconds: float = 20) -> None:
    """Until a client can run a query through the pooler (its first server connection);
    fails after `seconds` with the pooler's last answer (which names no password)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, connect_timeout=5).close()
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"the pooler never let a client through: {str(exc).strip()}") from None
            time.sleep(0.1)
