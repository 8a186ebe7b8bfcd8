"""Getting real pgTAP into the server the tests run on.

pgTAP is pure SQL. Its files come from the Debian package postgresql-15-pgtap
(it loads on PostgreSQL 15 to 18). For the embedded server we copy the control
and SQL files into its share/extension folder; for any other server pgTAP must
already be available there (Supabase ships it; Debian: apt install
postgresql-NN-pgtap).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from .errors import PgTapUnavailable
from .paths import state_dir

DEBIAN_PACKAGE = "postgresql-15-pgtap"
INSTALL_HINT = (
    "on Debian/Ubuntu: apt-get install postgresql-15-pgtap (any version's package works "
    "for the embedded server); on a remote server install pgTAP there (Supabase: "
    "enable the pgtap extension)"
)


def available(conn: psycopg.Connection) -> bool:
    row = conn.execute("select 1 from pg_available_extensions where name = 'pgtap'").fetchone()
    return row is not None


def _extension_dirs_with_pgtap() -> list[Path]:
    cache = state_dir() / "pgtap" / "usr" / "share" / "postgresql"
    candidates = glob.glob("/usr/share/postgresql/*/extension/pgtap.control")
    candidates += glob.glob(str(cache / "*" / "extension" / "pgtap.control"))
    return [Path(c).parent for c in sorted(candidates, reverse=True)]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, text=True, capture_output=True, check=False)


def download_debian_package() -> Path:
    """Fetch postgresql-15-pgtap with apt and unpack it into .neurant/pgtap (no install)."""
    target = state_dir() / "pgtap"
    target.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise PgTapUnavailable("pgTAP is not installed and this machine has no apt-get",
                               hint=INSTALL_HINT)
    result = _run(["apt-get", "download", DEBIAN_PACKAGE], target)
    if result.returncode != 0 and os.geteuid() == 0:
        # A fresh machine has empty package lists: refresh them once, then retry.
        _run(["apt-get", "update", "-q"], target)
        result = _run(["apt-get", "download", DEBIAN_PACKAGE], target)
    debs = sorted(target.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if result.returncode != 0 or not debs:
        raise PgTapUnavailable(
            f"could not download {DEBIAN_PACKAGE}: {result.stderr.strip()[-500:]}",
            hint=INSTALL_HINT,
        )
    unpack = _run(["dpkg-deb", "-x", str(debs[-1]), str(target)], target)
    if unpack.returncode != 0:
        raise PgTapUnavailable(f"could not unpack {debs[-1].name}: {unpack.stderr.strip()}")
    return target


def install_into_embedded(sharedir: Path) -> Path:
    """Make pgTAP available to the embedded server; returns the folder it came from."""
    ext_dir = sharedir / "extension"
    if (ext_dir / "pgtap.control").is_file():
        return ext_dir
    sources = _extension_dirs_with_pgtap()
    if not sources:
        download_debian_package()
        sources = _extension_dirs_with_pgtap()
    if not sources:
        raise PgTapUnavailable("pgTAP files not found after download", hint=INSTALL_HINT)
    src = sources[0]
    for f in src.glob("pgtap*"):
        shutil.copy2(f, ext_dir / f.name)
    return src


def ensure_available(conn: psycopg.Connection, *, embedded_sharedir: Path | None) -> None:
    """Raise PgTapUnavailable with what to do unless CREATE EXTENSION pgtap can work."""
    if available(conn):
        return
    if embedded_sharedir is not None:
        install_into_embedded(embedded_sharedir)
        if available(conn):
            return
    raise PgTapUnavailable(
        "the pgtap extension is not available on this PostgreSQL server", hint=INSTALL_HINT
    )
