"""A PostgreSQL 15 cluster prepared the way a new Supabase project starts, for the profile
supabase suite (tests/test_supabase_suite.py).

Debian's PostgreSQL 15 with `supabase_admin` as its bootstrap superuser (unix socket only,
trust), then ../shared/vendor/init-supabase-db.sh on `template1`: supabase/postgres's init
scripts and migrations, pgvector, the auth service's own migrations. Every database created
on the cluster afterwards starts as a Supabase project database (roles, schemas, auth,
default privileges), and `postgres` is no superuser, as on Supabase.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.debian_pg import (
    VENDOR,
    DebianServer,
    debian_postgres,
    ensure_debian_package,
    ensure_pg15_pgvector,
    missing_server_reason,
)

SUPERUSER = "supabase_admin"
INIT_SCRIPT = "init-supabase-db.sh"
PGTAP_CONTROL = Path("/usr/share/postgresql/15/extension/pgtap.control")


def vendor_dir() -> Path:
    return Path(os.environ.get("NEURANT_VENDOR", VENDOR))


def missing_reason() -> str | None:
    """Why the suite cannot run here (None: it can)."""
    script = vendor_dir() / INIT_SCRIPT
    if not script.is_file():
        return f"{script} is missing (the vendored Supabase init, ../shared/vendor; set NEURANT_VENDOR)"
    return (missing_server_reason(15) or ensure_pg15_pgvector()
            or ensure_debian_package("postgresql-15-pgtap", [PGTAP_CONTROL]))


@contextmanager
def supabase_cluster() -> Iterator[DebianServer]:
    """A throwaway PostgreSQL 15 whose template1 is a new Supabase project's database."""
    with debian_postgres(15, superuser=SUPERUSER) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        done = subprocess.run([str(vendor_dir() / INIT_SCRIPT), str(server.socket_dir), str(server.port), "template1"],
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{INIT_SCRIPT} failed: {(done.stdout + done.stderr).strip()[-1500:]}")
        yield server
