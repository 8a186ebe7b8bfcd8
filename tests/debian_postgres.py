"""A real Debian PostgreSQL (default 15, from /usr/lib/postgresql/<major>/bin) started by a
test: initdb into a temporary folder, listening on a unix socket only, stopped and deleted
afterwards. Skips with the reason when the binaries are absent.

As root, initdb refuses to run: the cluster then belongs to the `postgres` system user
(Debian's packages create it) and the commands run through runuser.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

SUPERUSER = "postgres"


def bin_dir(major: int = 15) -> Path:
    return Path(f"/usr/lib/postgresql/{major}/bin")


def _as_cluster_owner(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", SUPERUSER, "--", *args]


@contextmanager
def debian_postgres(major: int = 15) -> Iterator[str]:
    """Yield the superuser URL of database `postgres` on a fresh cluster of that major."""
    binaries = bin_dir(major)
    if not (binaries / "initdb").is_file() or not (binaries / "pg_ctl").is_file():
        pytest.skip(f"Debian's PostgreSQL {major} is not installed ({binaries}/initdb missing; "
                    f"apt-get install postgresql-{major})")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SUPERUSER)
        except KeyError:
            pytest.skip(f"running as root and there is no '{SUPERUSER}' system user to own the cluster")
    base = Path(tempfile.mkdtemp(prefix=f"neurant-pg{major}-"))
    if os.geteuid() == 0:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    pgdata, sockets = base / "data", base
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    try:
        subprocess.run(_as_cluster_owner([str(binaries / "initdb"), "-D", str(pgdata), "-U", SUPERUSER,
                                          "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True, env=env, timeout=120)
        options = f"-c listen_addresses='' -c unix_socket_directories={sockets} -c fsync=off -p 5432"
        subprocess.run(_as_cluster_owner([str(binaries / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60",
                                          "-l", str(base / "log"), "-o", options, "start"]),
                       check=True, capture_output=True, env=env, timeout=120)
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text(errors="replace") if (base / "log").is_file() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL {major}: {exc.stderr!r}\n{log[-2000:]}") from None
    try:
        yield f"postgresql://{SUPERUSER}@/postgres?host={quote(str(sockets), safe='')}&port=5432"
    finally:
        subprocess.run(_as_cluster_owner([str(binaries / "pg_ctl"), "-D", str(pgdata), "-w", "-m",
                                          "immediate", "stop"]), capture_output=True, check=False, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
