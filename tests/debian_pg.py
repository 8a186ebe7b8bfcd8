"""A real Debian PostgreSQL (apt package postgresql-NN, binaries in /usr/lib/postgresql/NN/bin)
started by a test: initdb in a temporary folder, unix socket only (no TCP port), trust
authentication, stopped and deleted afterwards. Also: installing a Debian extension package
(e.g. postgresql-15-cron) for it, which needs root because its files go to the server's
pkglibdir and sharedir (PostgreSQL 15 has no extension_control_path)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
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


def server_user() -> str | None:
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
    password: str | None = None  # set: scram-sha-256 everywhere, and TCP on 127.0.0.1:port

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        if self.password is not None:
            return f"postgresql://{quote(user)}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{quote(database)}"
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{quote(user)}@/{quote(database)}?host={host}&port={self.port}"

    def log(self) -> str:
        path = self.data.parent / "log"
        return path.read_text(errors="replace") if path.is_file() else ""


@contextmanager
def debian_postgres(major: int = 15, conf: dict[str, str] | None = None,
                    password: str | None = None, superuser: str = "postgres") -> Iterator[DebianServer]:
    """Start a throwaway Debian PostgreSQL `major`; conf lines are appended to postgresql.conf.
    `superuser` names the bootstrap superuser (Supabase's clusters: supabase_admin).
    With `password`: the superuser postgres has it, every connection (socket or TCP) must
    give it (scram-sha-256), and the server also listens on 127.0.0.1 (DebianServer.url)."""
    reason = missing_server_reason(major)
    if reason:
        raise RuntimeError(reason)
    base = Path(tempfile.mkdtemp(prefix=f"neurant-pg{major}-"))
    user = server_user()
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

    auth = ["-A", "trust"]
    listen = "''"
    if password is not None:
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n", encoding="utf-8")
        if user is not None:
            os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
        pwfile.chmod(0o600)
        auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
        listen, port = "'127.0.0.1'", free_tcp_port()
    try:
        run([bindir / "initdb", "-D", data, "-U", superuser, *auth, "-E", "UTF8",
             "--locale=C", "--no-sync"])
        lines = {"listen_addresses": listen, "unix_socket_directories": f"'{base}'", "port": str(port),
                 "fsync": "off", "full_page_writes": "off", **(conf or {})}
        with (data / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.writelines(f"{k} = {v}\n" for k, v in lines.items())
        run([bindir / "pg_ctl", "-D", data, "-l", base / "log", "-w", "-t", "60", "start"])
        yield DebianServer(major, base, port, data, password)
    finally:
        if (data / "postmaster.pid").is_file():
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, user=user, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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


VENDOR = Path(__file__).resolve().parents[1].parent / "shared" / "vendor"  # beside the checkout


def vendor_dir() -> Path:
    """The vendored real engines (Citus, pgvector, Supabase's init): ../shared/vendor from
    the project's root, or NEURANT_VENDOR. One place for every suite that needs them."""
    return Path(os.environ.get("NEURANT_VENDOR") or VENDOR)


def ensure_pg15_pgvector() -> str | None:
    """pgvector in Debian's PostgreSQL 15 (not packaged for it in the reachable registries):
    built from the vendored source by ../shared/vendor/build-pg15-extensions.sh (root; cached
    after the first build). Returns why it is still missing (a skip reason), or None."""
    control = Path("/usr/share/postgresql/15/extension/vector.control")
    if control.is_file():
        return None
    script = vendor_dir() / "build-pg15-extensions.sh"
    if not script.is_file():
        return f"pgvector for PostgreSQL 15 is not installed and {script} is missing (set NEURANT_VENDOR)"
    if os.geteuid() != 0:
        return f"pgvector for PostgreSQL 15 is not installed: run {script} pgvector as root"
    done = subprocess.run([str(script), "pgvector"], capture_output=True, text=True, check=False, timeout=1200)
    if done.returncode != 0 or not control.is_file():
        return f"{script} pgvector failed: {(done.stdout + done.stderr).strip()[-300:]}"
    return None
