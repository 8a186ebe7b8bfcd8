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
    DebianServer,
    debian_postgres,
    ensure_debian_package,
    ensure_pg15_pgvector,
    missing_server_reason,
    vendor_dir,
)

SUPERUSER = "supabase_admin"
INIT_SCRIPT = "init-supabase-db.sh"
PGTAP_CONTROL = Path("/usr/share/postgresql/15/extension/pgtap.control")


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


def main(pytest_args: list[str]) -> int:
    """`python -m tests.supabase_pg [PYTEST ARGS]`: the runner's own tests (default: every
    tests/test_*.py but the cluster and Supabase suites) on a Supabase template, the way the
    Supabase suite runs the pgTAP files: a database migrated with profile supabase by
    `postgres`, copied for each session. About 15 minutes on 2 cores, so not in `make test`."""
    import sys

    import psycopg
    from click.testing import CliRunner

    from neurant_db.cli import cli

    reason = missing_reason()
    if reason:
        print(f"the runner suite on a Supabase template cannot run: {reason}", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[1]
    args = pytest_args or sorted(str(p.relative_to(root)) for p in (root / "tests").glob("test_*.py")
                                 if "citus" not in p.name and "supabase" not in p.name)
    with supabase_cluster() as server:
        migrated, admin_url = "neurant_supabase", server.url("postgres", SUPERUSER)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'create database "{migrated}" owner postgres')
        profile = ["--database-url", server.url(migrated, "postgres"), "--profile", "supabase",
                   "--embedding-dimensions", "8"]
        for command in ("preflight", "migrate"):
            result = CliRunner().invoke(cli, [*profile, command])
            if result.exit_code != 0:
                print(result.output, file=sys.stderr)
                return 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
        env.update(DATABASE_URL=admin_url, NEURANT_TEST_PROFILE="supabase", NEURANT_TEST_TEMPLATE=migrated,
                   NEURANT_TEST_EMBEDDING_DIMENSIONS="8")
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *args],
                              cwd=root, env=env, check=False).returncode


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
