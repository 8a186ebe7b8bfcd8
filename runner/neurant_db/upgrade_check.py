"""Upgrade check: the upgrade path from a previous release loses no data (pgmq's habit).

1. the SQL tree of a git ref (the five migration folders and tests/fixtures) is
   extracted with `git archive` into a temporary folder;
2. a scratch database is created on the target server (a fresh random name, so no
   existing database is touched; dropped afterwards, also on failure) and migrated
   with that tree;
3. the ref's own pgTAP fixtures are loaded (they put rows in every tenant table for
   two companies, and they match the ref's schema, which the working tree's demo
   generators would not);
4. every table of public/private/archive is snapshotted: row count and, per row, a
   hash of each column's value (as text), so any subset of columns can be compared
   as a multiset, independent of row order;
5. the working tree's migrations are applied with the normal runner, the tables
   are snapshotted again and compared: no table lost, no row lost, no column with
   data lost, and the values of the columns both sides have unchanged, unless one
   of the newly applied migrations declares the change in its opening comment:

       -- upgrade: rewrites public.conversations.status   (its values, and updated_at, may change)
       -- upgrade: rewrites public.analytics_daily        (the whole table may change)
       -- upgrade: drops public.users.legacy_flag         (the column may go)
       -- upgrade: drops public.old_table                 (the table may go)

With `--rows N` the check also generates about N rows on top of the fixtures (step
3b: companies with conversations closed long ago, messages, reactions, escalations,
integration logs and their daily analytics; lifecycle_demo.py, loaded with triggers
off), so the upgrade runs against populated tables, as it would in production (an
online migration, an index build, a column added with a default) and every row of
them is compared. The generator writes today's table shapes: REF must have them.

6. `doctor --data` (doctor_data.py) runs before and after the upgrade: counters
   against the rows, usage against stored messages, orphans, constraints left NOT
   VALID, invalid indexes. An error finding after the upgrade that was not there
   before (a backfill that forgets a counter, a constraint added NOT VALID over rows
   that break it) fails the check; one already in REF's data (its fixtures were
   written by hand) is printed and does not fail it, nor do warnings.

The snapshot holds one short hash per cell in memory: it is meant for fixture-sized
data (a few thousand generated rows), not for a copy of production.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from . import scratch
from .database import DatabaseTarget, connect, database_name
from .doctor_data import run_data_checks
from .doctor_finding import Finding
from .errors import BadArgument, MigrationSourceError, NeurantError
from .lifecycle_demo import live_counts, load_demo
from .migrate import migrate
from .paths import MIGRATION_FOLDERS, sql_root
from .releases import find_release, newest_release
from .render import Migration, render_all
from .settings import Settings

SNAPSHOT_SCHEMAS = ("public", "private", "archive")
FIXTURES = "tests/fixtures"
EXTRACTED = (*MIGRATION_FOLDERS, FIXTURES)
DECLARATION = re.compile(r"^--\s*upgrade:\s*(?P<rest>.*?)\s*$")
DECLARED = re.compile(r"^(?P<verb>rewrites|drops)\s+(?P<target>[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*"
                      r"(\.[a-z_][a-z0-9_]*)?)$")
FAILING = ("lost", "changed")
TOUCHED = "updated_at"  # set by private.touch_updated_at() on every update

Progress = Callable[[str], None]


class UpgradeCheckError(NeurantError):
    """The check could not run (git, the ref, or a phase of the upgrade failed)."""


# --- git ------------------------------------------------------------------------


def _git_executable() -> str:
    git = shutil.which("git")
    if git is None:
        raise UpgradeCheckError("git is not available on PATH; the upgrade check reads the old release from git",
                                hint="install git (apt-get install git)")
    return git


def _run_git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([_git_executable(), "-C", str(repo), *args], capture_output=True, check=False)


def _git(repo: Path, *args: str) -> bytes:
    done = _run_git(repo, *args)
    if done.returncode != 0:
        raise UpgradeCheckError(f"git {' '.join(args)} failed: "
                                f"{done.stderr.decode(errors='replace').strip() or done.returncode}")
    return done.stdout


def git_location(root: Path) -> tuple[Path, str]:
    """The git work tree holding root, and root's path inside it ('' or 'sub/dir/')."""
    done = _run_git(root, "rev-parse", "--show-toplevel", "--show-prefix")
    if done.returncode != 0 or not root.is_dir():
        raise UpgradeCheckError(f"the SQL root {root} is not inside a git work tree",
                                hint="run the upgrade check from a clone of neurant-db")
    top, _, prefix = done.stdout.decode().partition("\n")
    return Path(top.strip()), prefix.strip()


def resolve_ref(repo: Path, ref: str) -> str:
    """The commit ref names, or BadArgument."""
    if not ref or ref.startswith("-"):
        raise BadArgument(f"--from {ref!r}: not a git ref")
    done = _run_git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0:
        raise BadArgument(f"--from {ref}: no such git ref (tag, branch or commit) in {repo}",
                          hint="list the releases with `git tag --list 'v*'`")
    return done.stdout.decode().strip()


def release_ref(name: str | None, root: Path | None = None) -> str:
    """What to upgrade from: a release recorded in releases.json (by version, `0.1.0` or
    `v0.1.0`; the newest when name is None) gives its commit, which must be in this clone;
    any other name is taken as a git ref."""
    if name is None:
        newest = newest_release(root)
        if newest is None:
            raise BadArgument("no release is recorded in releases.json yet, so there is no release to upgrade from",
                              hint="pass --from REF (a tag, branch or commit) to check the upgrade from it")
        name = newest.version
    found = find_release(name, root)
    if found is None:
        return name
    repo, _prefix = git_location(root or sql_root())
    if _run_git(repo, "cat-file", "-e", f"{found.commit}^{{commit}}").returncode != 0:
        raise UpgradeCheckError(f"release {found.version} was recorded at commit {found.commit[:12]}, "
                                "which this clone does not have",
                                hint=f"fetch the history: git fetch --unshallow (or git fetch origin {found.commit})")
    return found.commit


def extract_tree(root: Path, ref: str, dest: Path) -> tuple[Path, str]:
    """Write ref's migration folders and fixtures (those it has) under dest.

    Returns the extracted SQL root (dest plus root's prefix in the repository) and the commit.
    """
    repo, prefix = git_location(root)
    commit = resolve_ref(repo, ref)
    listed = _git(repo, "ls-tree", "-d", "--name-only", commit, "--", *(prefix + p for p in EXTRACTED))
    present = listed.decode().split()
    if not any(p in present for p in (prefix + f for f in MIGRATION_FOLDERS)):
        raise UpgradeCheckError(f"{ref} ({commit[:10]}) has none of the folders {', '.join(MIGRATION_FOLDERS)}"
                                + (f" under {prefix}" if prefix else ""))
    archive = _git(repo, "archive", "--format=tar", commit, "--", *present)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    for folder in MIGRATION_FOLDERS:  # git keeps no empty folder: the ref had nothing there
        (dest / prefix / folder).mkdir(parents=True, exist_ok=True)
    return dest / prefix, commit


# --- declarations ----------------------------------------------------------------


@dataclass(frozen=True)
class Declarations:
    """What the newly applied migrations say they change: target -> migration id."""

    rewrites: dict[str, str] = field(default_factory=dict)
    drops: dict[str, str] = field(default_factory=dict)

    def rewritten(self, table: str, column: str | None = None) -> str | None:
        return self.rewrites.get(table) or (self.rewrites.get(f"{table}.{column}") if column else None)

    def dropped(self, table: str, column: str | None = None) -> str | None:
        return self.drops.get(table) or (self.drops.get(f"{table}.{column}") if column else None)


def opening_comment(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        lines.append(stripped)
    return lines


def read_declarations(migrations: Sequence[Migration]) -> Declarations:
    """`-- upgrade: rewrites|drops schema.table[.column]` lines of the migrations' opening comments."""
    found = Declarations()
    problems = []
    for m in migrations:
        for line in opening_comment(m.apply_sql):
            match = DECLARATION.match(line)
            if not match:
                continue
            declared = DECLARED.match(match["rest"])
            if not declared:
                problems.append(f"{m.id}: `{line}`")
                continue
            book = found.rewrites if declared["verb"] == "rewrites" else found.drops
            book[declared["target"]] = m.id
    if problems:
        raise MigrationSourceError(
            "malformed upgrade declarations:\n  " + "\n  ".join(problems),
            hint="write `-- upgrade: rewrites schema.table[.column]` or `-- upgrade: drops schema.table[.column]`",
        )
    return found


# --- snapshots -------------------------------------------------------------------


@dataclass(frozen=True)
class TableSnapshot:
    """A table's columns and, per row, the md5 of each column's value as text (None for NULL)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]

    @property
    def count(self) -> int:
        return len(self.rows)

    def project(self, columns: Sequence[str]) -> Counter[tuple[str | None, ...]]:
        """The multiset of rows over these columns (order-independent)."""
        idx = [self.columns.index(c) for c in columns]
        return Counter(tuple(row[i] for i in idx) for row in self.rows)

    def non_null(self, column: str) -> int:
        i = self.columns.index(column)
        return sum(1 for row in self.rows if row[i] is not None)

    @property
    def digest(self) -> str:
        """One order-independent hash of the table: sha256 over its sorted row hashes."""
        row_hashes = sorted(
            hashlib.sha256("\x1f".join(f"{c}={v}" for c, v in zip(self.columns, row, strict=True))
                           .encode()).hexdigest()
            for row in self.rows)
        return hashlib.sha256("\n".join(row_hashes).encode()).hexdigest()


def snapshot(conn: psycopg.Connection, schemas: Sequence[str] = SNAPSHOT_SCHEMAS) -> dict[str, TableSnapshot]:
    """Every ordinary/partitioned table of the schemas, read with row security off
    (an error rather than a silent undercount if RLS would filter the reader)."""
    conn.execute("set timezone = 'UTC'")
    conn.execute("set row_security = off")
    tables = conn.execute(
        "select n.nspname, c.relname, array_agg(a.attname::text order by a.attnum)"
        "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        "  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
        " where n.nspname = any(%s) and c.relkind in ('r', 'p') and not c.relispartition"
        " group by 1, 2 order by 1, 2", (list(schemas),)).fetchall()
    result: dict[str, TableSnapshot] = {}
    for schema, table, columns in tables:
        cells = sql.SQL(", ").join(
            sql.SQL("md5(t.{}::text)").format(sql.Identifier(c)) for c in columns)
        query = sql.SQL("select array[{}]::text[] from {}.{} t").format(
            cells, sql.Identifier(schema), sql.Identifier(table))
        rows = tuple(tuple(r[0]) for r in conn.execute(query).fetchall())
        result[f"{schema}.{table}"] = TableSnapshot(tuple(columns), rows)
    return result


# --- comparison ------------------------------------------------------------------


@dataclass(frozen=True)
class TableReport:
    """One table's fate across the upgrade."""

    table: str
    rows_before: int | None
    rows_after: int | None
    status: str  # ok | new | dropped (declared) | changed | lost
    details: tuple[str, ...] = ()
    hash_before: str | None = None  # TableSnapshot.digest
    hash_after: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows_before": self.rows_before, "rows_after": self.rows_after,
                "status": self.status, "details": list(self.details),
                "hash_before": self.hash_before, "hash_after": self.hash_after}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def compare_table(name: str, before: TableSnapshot, after: TableSnapshot, declared: Declarations) -> TableReport:
    details: list[str] = []
    lost = changed = False
    whole = declared.rewritten(name)
    for column in (c for c in before.columns if c not in after.columns):
        by = declared.dropped(name, column) or whole
        filled = before.non_null(column)
        if by:
            details.append(f"column {column} dropped (declared by {by})")
        elif filled:
            details.append(f"column {column} dropped with data in {_plural(filled, 'row')}")
            lost = True
        else:
            details.append(f"column {column} dropped (it held no data)")
    added = [c for c in after.columns if c not in before.columns]
    if added:
        details.append("new column(s): " + ", ".join(added))
    if whole:
        details.append(f"contents rewritten (declared by {whole})")
    else:
        rewritten = [c for c in before.columns if c in after.columns and declared.rewritten(name, c)]
        details += [f"column {c} rewritten (declared by {declared.rewritten(name, c)})" for c in rewritten]
        if rewritten and TOUCHED in before.columns and TOUCHED in after.columns and TOUCHED not in rewritten:
            rewritten.append(TOUCHED)  # the rows rewritten got a new updated_at from the touch trigger
        common = [c for c in before.columns if c in after.columns and c not in rewritten]
        missing = sum((before.project(common) - after.project(common)).values())
        shrunk = max(0, before.count - after.count)
        if shrunk:
            details.append(f"{_plural(shrunk, 'row')} lost")
            lost = True
        if missing > shrunk:
            differing = [c for c in common if before.project([c]) != after.project([c])]
            details.append(f"{_plural(missing - shrunk, 'row')} changed"
                           + (f" in {', '.join(differing)}" if differing else "")
                           + " (no migration declares it)")
            changed = True
        if after.count > before.count:
            details.append(f"{after.count - before.count} row(s) added")
    if before.count == 0:
        details.append("empty before the upgrade: not covered by the data")
    status = "lost" if lost else "changed" if changed else "ok"
    return TableReport(name, before.count, after.count, status, tuple(details), before.digest, after.digest)


def compare(before: dict[str, TableSnapshot], after: dict[str, TableSnapshot],
            declared: Declarations) -> list[TableReport]:
    reports = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            reports.append(TableReport(name, None, new.count, "new", hash_after=new.digest))
        elif old is not None and new is None:
            by = declared.dropped(name)
            if by:
                reports.append(TableReport(name, old.count, None, "dropped", (f"declared by {by}",), old.digest))
            else:
                reports.append(TableReport(name, old.count, None, "lost",
                                           (f"table dropped with {_plural(old.count, 'row')}",), old.digest))
        elif old is not None and new is not None:
            reports.append(compare_table(name, old, new, declared))
    return reports


# --- the check -------------------------------------------------------------------


@dataclass
class UpgradeReport:
    ref: str
    commit: str
    database: str
    ref_migrations: list[str]
    fixtures: list[str]
    applied: list[str]
    tables: list[TableReport]
    seconds: float = 0.0
    generated: dict[str, int] = field(default_factory=dict)  # --rows: rows generated per table
    data_findings: list[Finding] = field(default_factory=list)  # doctor --data on the upgraded database
    data_before: list[Finding] = field(default_factory=list)  # doctor --data on REF's database

    @property
    def data_errors(self) -> list[Finding]:
        """The error findings after the upgrade that REF's database did not have."""
        known = {(f.check, f.object) for f in self.data_before if f.level == "error"}
        return [f for f in self.data_findings if f.level == "error" and (f.check, f.object) not in known]

    @property
    def ok(self) -> bool:
        return not any(t.failed for t in self.tables) and not self.data_errors

    def counts(self) -> dict[str, int]:
        return dict(Counter(t.status for t in self.tables))

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.ref, "from_commit": self.commit, "scratch_database": self.database,
                "from_migrations": len(self.ref_migrations), "fixtures": self.fixtures,
                "applied": self.applied, "ok": self.ok, "counts": self.counts(),
                "seconds": round(self.seconds, 2), "generated_rows": self.generated,
                "tables": [t.as_dict() for t in self.tables],
                "data_findings": [f.as_dict() for f in self.data_findings],
                "data_findings_before": [f.as_dict() for f in self.data_before],
                "data_errors": [f.as_dict() for f in self.data_errors]}


@contextmanager
def scratch_database(server: DatabaseTarget, prefix: str = "neurant_upgrade") -> Iterator[DatabaseTarget]:
    """A new database with a random name on server's server, dropped on exit (also on error)."""
    with scratch.scratch_database(server, prefix, purpose="upgrade-check", error=UpgradeCheckError,
                                  why="the upgrade check needs a role with CREATEDB on the target server") as db:
        yield db


def load_fixtures(conn: psycopg.Connection, root: Path) -> list[str]:
    """Run root/tests/fixtures/*.sql in file order, in one transaction, as the connecting role."""
    files = sorted((root / FIXTURES).glob("*.sql"))
    with conn.transaction():
        conn.execute("set local search_path = public, extensions")
        for path in files:
            try:
                conn.execute(path.read_text(encoding="utf-8"))
            except psycopg.Error as exc:
                raise UpgradeCheckError(
                    f"loading fixture {path.name} failed: {(exc.diag.message_primary or str(exc)).strip()}") from None
    return [p.name for p in files]


GENERATED_COMPANIES = 2
GENERATED_MESSAGES = 8  # per conversation; with its reaction, log and escalation share: ~11 rows
GENERATED_FIRST = 900  # first company number of the generator (ids ...-000000000384 on), apart from the fixtures


def generate_rows(conn: psycopg.Connection, rows: int) -> dict[str, int]:
    """About `rows` rows on top of the fixtures (lifecycle_demo's data set); returns the
    rows generated per table."""
    if rows < 1:
        raise BadArgument(f"--rows {rows}: give a positive number of rows")
    conversations = max(1, -(-rows // (GENERATED_COMPANIES * (GENERATED_MESSAGES + 3))))
    before = live_counts(conn)
    try:
        after = load_demo(conn, companies=GENERATED_COMPANIES, conversations=conversations,
                          messages=GENERATED_MESSAGES, first=GENERATED_FIRST)
    except psycopg.Error as exc:
        raise UpgradeCheckError(
            f"generating rows failed: {(exc.diag.message_primary or str(exc)).strip()}",
            hint="the generator (lifecycle_demo.py) writes the working tree's table shapes; "
            "run without --rows for a release whose tables differ") from None
    return {table: after[table] - before[table] for table in after if after[table] != before[table]}


def _phase(label: str, exc: NeurantError) -> NeurantError:
    """The same error (same exit code), saying which phase of the check raised it."""
    return type(exc)(f"{label}: {exc.message}", hint=exc.hint)


def run_upgrade_check(server: DatabaseTarget, ref: str, settings: Settings, *, root: Path | None = None,
                      schemas: Sequence[str] = SNAPSHOT_SCHEMAS, progress: Progress | None = None,
                      rows: int = 0) -> UpgradeReport:
    """Upgrade a scratch database from ref to the working tree at root (default: the SQL root)."""
    started = time.monotonic()
    say = progress or (lambda _text: None)
    root = (root or sql_root()).resolve()
    new_migrations = render_all(settings, root)
    with tempfile.TemporaryDirectory(prefix="neurant-upgrade-") as tmp:
        old_root, commit = extract_tree(root, ref, Path(tmp))
        try:
            old_migrations = render_all(settings, old_root)
        except NeurantError as exc:
            raise _phase(f"rendering {ref}", exc) from None
        say(f"{ref} ({commit[:10]}): {_plural(len(old_migrations), 'migration')}")
        with scratch_database(server) as scratch:
            database = database_name(scratch.url)
            say(f"scratch database {database} (dropped afterwards)")
            try:
                migrate(scratch, old_migrations, settings)
            except NeurantError as exc:
                raise _phase(f"migrating to {ref}", exc) from None
            with connect(scratch.url, purpose="upgrade-check") as conn:
                fixtures = load_fixtures(conn, old_root)
                say(f"loaded {ref}'s fixtures: {', '.join(fixtures) or 'none (only seed data is compared)'}")
                generated = generate_rows(conn, rows) if rows else {}
                if generated:
                    say(f"generated {sum(generated.values())} rows: "
                        + ", ".join(f"{t} {n}" for t, n in sorted(generated.items())))
                before = snapshot(conn, schemas)
                findings_before = run_data_checks(conn)
            try:
                result = migrate(scratch, new_migrations, settings)
            except NeurantError as exc:
                raise _phase(f"upgrading from {ref} to the working tree", exc) from None
            say(f"working tree: applied {_plural(len(result.applied), 'migration')}"
                + (f" ({', '.join(result.applied)})" if result.applied else ""))
            applied = set(result.applied)
            declared = read_declarations([m for m in new_migrations if m.id in applied])
            with connect(scratch.url, purpose="upgrade-check") as conn:
                after = snapshot(conn, schemas)
                findings = run_data_checks(conn)
            say(f"doctor --data on the upgraded database: {_plural(len(findings), 'finding')}")
    return UpgradeReport(ref, commit, database, [m.id for m in old_migrations],
                         fixtures, result.applied, compare(before, after, declared), time.monotonic() - started,
                         generated, findings, findings_before)


def print_report(report: UpgradeReport, echo: Callable[[str], None]) -> None:
    width = max((len(t.table) for t in report.tables), default=10)
    echo(f"{'table':<{width}}  {'before':>6}  {'after':>6}  status")
    for t in report.tables:
        before = "-" if t.rows_before is None else str(t.rows_before)
        after = "-" if t.rows_after is None else str(t.rows_after)
        status = t.status.upper() if t.failed else t.status
        echo(f"{t.table:<{width}}  {before:>6}  {after:>6}  {status:<8} {'; '.join(t.details)}".rstrip())
    new = report.data_errors
    for f in report.data_findings:
        if f in new:
            echo(f"doctor --data ERROR: {f.check} {f.object}: {f.message}" + (f" (fix: {f.hint})" if f.hint else ""))
        else:  # the details are doctor --data's, on a database of REF
            echo(f"doctor --data {f.level}{' (already before the upgrade)' if f.level == 'error' else ''}: "
                 f"{f.check} {f.object}: {f.message.split(':', 1)[0]}")
    counts = report.counts()
    echo(f"{_plural(len(report.tables), 'table')}: "
         + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("ok", "new", "dropped", "changed", "lost")))
    errors = len(new)
    echo(f"doctor --data after the upgrade: {_plural(errors, 'new error')}, "
         f"{_plural(len(report.data_findings) - errors, 'other finding')}")
    if report.ok:
        echo(f"upgrade from {report.ref} loses nothing and leaves the data consistent ({report.seconds:.1f}s)")
        return
    bad = [t.table for t in report.tables if t.failed]
    if bad:
        echo(f"upgrade from {report.ref} LOSES OR CHANGES DATA in {', '.join(bad)}")
    if errors:
        echo(f"upgrade from {report.ref} LEAVES THE DATA INCONSISTENT: "
             + ", ".join(sorted({f.check for f in new})))
