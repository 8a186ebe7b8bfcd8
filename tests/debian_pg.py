"""A real Debian PostgreSQL (apt package postgresql-NN, binaries in /usr/lib/postgresql/NN/bin)
started by a test: initdb in a temporary folder, unix socket only (no TCP port), trust
authentication, stopped and deleted afterwards. Also: installing a Debian extension package
(e.g. postgresql-15-cron) for it, which needs root because its files go to the server's
pkglibdir and sharedir (PostgreSQL 15 has no extension_control_path)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


def debian_bin(major: int) -> Path:
    return Path(f"/usr/lib/postgresql/{major}/bin")


def missing_server_reason(major: int) -> str | None:
    """Why a Debian PostgreSQL `major` cannot be started here (None when it can)."""
    if not (debian_bin(major) / "postgres").is_file():
        return f"Debian PostgreSQL {major} is not installed ({debian_bin(major)}; apt-get install postgresql-{major})"
    return None


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: the system user to run it as (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


@dataclass(frozen=True)
class DebianServer:
    major: int
    socket_dir: Path
    port: int
    data: Path

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{quote(user)}@/{quote(database)}?host={host}&port={self.port}"

    def log(self) -> str:
        path = self.data.parent / "log"
        return path.read_text(errors="replace") if path.is_file() else ""


@contextmanager
def debian_postgres(major: int = 15, conf: dict[str, str] | None = None) -> Iterator[DebianServer]:
    """Start a throwaway Debian PostgreSQL `major`; conf lines are appended to postgresql.conf."""
    reason = missing_server_reason(major)
    if reason:
        raise RuntimeError(reason)
    base = Path(tempfile.mkdtemp(prefix=f"neurant-pg{major}-"))
    user = _run_as()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    data, port, bindir = base / "data", 5432, debian_bin(major)

    def run(args: Sequence[str | Path]) -> None:
        done = subprocess.run([str(a) for a in args], capture_output=True, text=True, user=user,
                              cwd=base, timeout=120)
        if done.returncode != 0:
            log = (base / "log").read_text(errors="replace")[-2000:] if (base / "log").is_file() else ""
            raise RuntimeError(f"{' '.join(map(str, args))} failed: {done.stderr.strip()}\n{log}")

    try:
        run([bindir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-sync"])
        lines = {"listen_addresses": "''", "unix_socket_directories": f"'{base}'", "port": str(port),
                 "fsync": "off", "full_page_writes": "off", **(conf or {})}
        with (data / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.writelines(f"{k} = {v}\n" for k, v in lines.items())
        run([bindir / "pg_ctl", "-D", data, "-l", base / "log", "-w", "-t", "60", "start"])
        yield DebianServer(major, base, port, data)
    finally:
        if (data / "postmaster.pid").is_file():
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, user=user, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


def ensure_debian_package(package: str, files: Sequence[Path]) -> str | None:
    """Make sure `files` exist, installing the Debian `package` when they do not (root only).
    Returns why they are still missing (a skip reason), or None."""
    if all(f.exists() for f in files):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (f"{package} is not installed and this test cannot install it (needs root and apt-get: "
                f"apt-get install {package})")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120", package]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # a fresh machine has empty package lists: refresh them once, then retry
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, check=False)
        done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0 or not all(f.exists() for f in files):
        return f"could not install {package}: {done.stderr.strip()[-300:]}"
    return None
