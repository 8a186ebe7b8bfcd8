"""`neurant-db docs`: the committed schema dump (docs/schema.sql), reference
(docs/schema.md), ER diagram (docs/erd.svg) and machine-readable contract
(docs/contract.json, docs/contract.ts, docs/contract_types.py: contract.py), generated from a fully migrated
database and compared with the committed files by `--check` and the test suite.

Only the live database is read (pg_dump and pg_catalog), never the migration
files, so renaming or consolidating migrations changes nothing here as long as
the schema they build is the same.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .catalog import DOCUMENTED_SCHEMAS, read_catalog
from .contract import build_json, read_errors, read_rpcs, render_json
from .contract_code import render_py, render_ts
from .database import DatabaseTarget, connect, scrub
from .erd import render_erd
from .errors import NeurantError
from .ledger import META_SCHEMA
from .migrate import require_migrated as require_any_migrated
from .migrate import status
from .paths import sql_root
from .reference import render_reference
from .render import Migration
from .server import embedded_sharedir
from .settings import Settings

DOCS_FILES = ("schema.sql", "schema.md", "erd.svg", "contract.json", "contract.ts", "contract_types.py")
COMMAND = "neurant-db docs"
DUMP_NOISE = ("-- Dumped", "\\restrict", "\\unrestrict")
OLDEST_MAJOR = 15  # the oldest supported server: the committed files must load there
# Settings a newer pg_dump writes that an older server refuses (with the major that knows them):
# left out, so that the dump is the same text from every supported major and loads on the oldest.
NEWER_SETTINGS = {"transaction_timeout": 17}


class NotMigrated(NeurantError):
    """The database is not fully migrated with the given settings."""


def pg_dump_major(pg_dump: Path) -> int | None:
    try:
        out = subprocess.run([str(pg_dump), "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else None


def server_major_of(url: str) -> int:
    with connect(url, purpose="docs") as conn:
        return conn.info.server_version // 10000


def find_pg_dump(server_major: int) -> Path:
    """The embedded server's pg_dump when its major matches the server's, else a
    pg_dump of that major on PATH or in Debian's /usr/lib/postgresql/<major>/bin."""
    candidates: list[Path] = []
    with contextlib.suppress(Exception):  # the wheel is missing or broken: look elsewhere
        candidates.append(embedded_sharedir().parent / "bin" / "pg_dump")
    on_path = shutil.which("pg_dump")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path(f"/usr/lib/postgresql/{server_major}/bin/pg_dump"))
    for path in candidates:
        if path.is_file() and pg_dump_major(path) == server_major:
            return path
    raise NeurantError(
        f"no pg_dump for PostgreSQL {server_major} found (the dump must come from the server's major)",
        hint=f"install it (Debian: apt-get install postgresql-client-{server_major}) or put it on PATH",
    )


def dump_schema(url: str, pg_dump: Path | None = None, *, privileges: bool = True,
                exclude_schemas: tuple[str, ...] = (META_SCHEMA,)) -> str:
    """pg_dump --schema-only --no-owner, without the lines that change from run to
    run (tool and server versions, the random \\restrict key)."""
    if pg_dump is None:  # a newer pg_dump writes settings an older server cannot restore
        pg_dump = find_pg_dump(server_major_of(url))
    args = [str(pg_dump), "--schema-only", "--no-owner", "--dbname", url]
    if not privileges:
        args.append("--no-privileges")
    args += [f"--exclude-schema={s}" for s in exclude_schemas]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise NeurantError(f"pg_dump failed: {scrub(done.stderr.strip(), url)}")
    newer = tuple(f"SET {name} = " for name in NEWER_SETTINGS)
    lines = [policy_roles_sorted(line) for line in without_catalog_privileges(done.stdout).splitlines()
             if not line.startswith(DUMP_NOISE + newer)]
    return "\n".join(lines)


POLICY_ROLES = re.compile(r"^(CREATE POLICY .*? TO )(.+?)( USING \(| WITH CHECK \(|;$)")


def policy_roles_sorted(line: str) -> str:
    """A CREATE POLICY line with its `TO` roles in name order: pg_dump lists them in the order
    of the roles' OIDs, which differs between servers (a Supabase project creates anon after
    authenticated), while the policy is the same."""
    found = POLICY_ROLES.match(line)
    if not found:
        return line
    roles = ", ".join(sorted(found.group(2).split(", ")))
    return f"{found.group(1)}{roles}{found.group(3)}{line[found.end():]}"


def without_catalog_privileges(dump: str) -> str:
    """`dump` without the privilege entries of PostgreSQL's own catalog functions (schema
    pg_catalog: the large-object and statistics functions policies/0590 revokes from the
    request roles when a superuser applies it). Which of them exist depends on the server's
    major (pg_stat_get_db_conflict_logicalslot is 16+), so the committed contract leaves
    them out: it is then the same text from every major and loads on the oldest. Those
    revokes are proved by tests/pgtap/0010_catalog_hardening.sql, not by the dump."""
    entries = re.split(r"(?m)^(?=--\n-- Name: )", dump)
    return "".join(e for e in entries if not re.match(r"--\n-- Name: [^\n]*; Schema: pg_catalog;", e))


def require_migrated(target: DatabaseTarget, migrations: list[Migration]) -> None:
    with target.connect(purpose="docs") as conn:
        require_any_migrated(conn)
    states = status(target, migrations)
    pending = [s.id for s in states if s.state == "pending"]
    if pending:
        raise NotMigrated(
            f"the database is not fully migrated: {len(pending)} pending migration(s), first {pending[0]}; "
            "run migrate first",
            hint="neurant-db migrate (with the same settings), then neurant-db docs",
        )
    other = [f"{s.id} ({s.state})" for s in states if s.state != "applied"]
    if other:
        raise NotMigrated(
            "the database was migrated from other SQL or with other settings than this command's: "
            + ", ".join(other[:5]) + (" ..." if len(other) > 5 else ""),
            hint="the docs describe the settings given to this command: migrate a fresh database with them",
        )


def header(settings: Settings) -> str:
    """The same on every supported major: the files are generated identically from each."""
    return (f"Generated by `{COMMAND}` from a fully migrated database (loads on PostgreSQL {OLDEST_MAJOR} "
            f"and later): profile {settings.profile}, embedding_dimensions {settings.embedding_dimensions}, "
            f"vector_schema {settings.vector_schema}. Do not edit; regenerate with `{COMMAND}`.")


def _foreign_schemas(conn: psycopg.Connection) -> tuple[str, ...]:
    """Schemas that are neither documented nor an extension's home (test helpers,
    pgTAP, the runner's ledger): left out of the dump."""
    rows = conn.execute("""
        select n.nspname from pg_namespace n
        where n.nspname not like 'pg\\_%%' and n.nspname <> 'information_schema'
          and n.nspname <> all(%s)
          and not exists (select 1 from pg_extension e where e.extnamespace = n.oid
                          and e.extname not in ('pgtap'))
        order by 1""", (list(DOCUMENTED_SCHEMAS),)).fetchall()
    return tuple(sorted({META_SCHEMA, *(r[0] for r in rows)}))


def build(target: DatabaseTarget, settings: Settings) -> dict[str, str]:
    """The three files' text, generated from the target database."""
    with target.connect(purpose="docs") as conn:
        catalog = read_catalog(conn)
        excluded = _foreign_schemas(conn)
        rpcs, errors = read_rpcs(conn), read_errors(conn, sql_root())
    title = header(settings)
    contract = build_json(catalog, rpcs, errors, title)
    dump = dump_schema(target.url, find_pg_dump(catalog.server_major), exclude_schemas=excluded)
    return {
        "schema.sql": f"-- {title}\n" + dump.lstrip("\n").rstrip() + "\n",
        "schema.md": render_reference(catalog, title),
        "erd.svg": render_erd(catalog, title),
        "contract.json": render_json(contract),
        "contract.ts": render_ts(contract),
        "contract_types.py": render_py(contract),
    }


@dataclass(frozen=True)
class Stale:
    name: str
    diff: str  # a short unified-diff excerpt, or why it is stale


def stale_files(out: Path, generated: dict[str, str], excerpt_lines: int = 20) -> list[Stale]:
    found = []
    for name in DOCS_FILES:
        path = out / name
        if not path.is_file():
            found.append(Stale(name, f"{path} is missing"))
            continue
        committed = path.read_text(encoding="utf-8")
        if committed == generated[name]:
            continue
        diff = list(difflib.unified_diff(committed.splitlines(), generated[name].splitlines(),
                                         f"{path} (committed)", f"{path} (fresh build)", n=1, lineterm=""))
        more = len(diff) - excerpt_lines
        found.append(Stale(name, "\n".join(diff[:excerpt_lines])
                           + (f"\n... ({more} more diff lines)" if more > 0 else "")))
    return found


def write_docs(out: Path, generated: dict[str, str]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DOCS_FILES:
        path = out / name
        path.write_text(generated[name], encoding="utf-8")
        written.append(path)
    return written
