"""Find the versioned SQL files and render them with jinja2 in global version order."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .citus_render import profile_only, rewrite, template_globals
from .errors import MigrationSourceError, not_utf8
from .paths import MIGRATION_FOLDERS, sql_root
from .role_settings import PROJECT_SETTINGS
from .settings import Settings
from .table_registry import VersionedRegistry, for_templates

FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
ROLLBACK_SUFFIX = ".rollback.sql"


@dataclass(frozen=True)
class MigrationSource:
    """One migration as found on disk (not rendered)."""

    version: int
    name: str
    path: Path
    rollback_path: Path
    # `-- neurant: profile <name>` in the opening comment: part of that profile only.
    only_profile: str | None = None

    @property
    def id(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class Migration:
    """One migration rendered with a given set of settings."""

    source: MigrationSource
    apply_sql: str
    rollback_sql: str

    @property
    def version(self) -> int:
        return self.source.version

    @property
    def id(self) -> str:
        return self.source.id

    @property
    def checksum(self) -> str:
        """sha256 of the rendered apply SQL: what drift detection compares."""
        return hashlib.sha256(self.apply_sql.encode("utf-8")).hexdigest()

    @property
    def transactional(self) -> bool:
        """False when the opening comment declares `-- neurant: no-transaction` (online.py)."""
        return not declares_no_transaction(self.apply_sql)

    @property
    def rollback_checksum(self) -> str:
        """sha256 of the rendered rollback SQL (an edited rollback is drift too)."""
        return hashlib.sha256(self.rollback_sql.encode("utf-8")).hexdigest()


def discover(root: Path | None = None) -> list[MigrationSource]:
    """Every migration under the SQL folders, ordered by version; refuses inconsistencies."""
    root = root or sql_root()
    # Every folder is part of the package: one that is gone (a broken checkout or install)
    # would otherwise read as "nothing to apply" while its applied migrations go unchecked.
    absent = [f"{folder}/" for folder in MIGRATION_FOLDERS if not (root / folder).is_dir()]
    if absent:
        raise MigrationSourceError(
            f"the SQL root {root} is missing migration folder(s) {', '.join(absent)}",
            hint="restore them (every one of " + ", ".join(f"{f}/" for f in MIGRATION_FOLDERS)
            + " must exist, even empty), or point NEURANT_SQL_ROOT at a complete tree",
        )
    found: dict[int, MigrationSource] = {}
    problems: list[str] = []
    for folder in MIGRATION_FOLDERS:
        directory = root / folder
        for path in sorted(directory.glob("*.sql")):
            rel = path.relative_to(root)
            if path.name.startswith("_"):
                continue
            if path.name.endswith(ROLLBACK_SUFFIX):
                apply_name = path.name[: -len(ROLLBACK_SUFFIX)] + ".sql"
                if not (directory / apply_name).is_file():
                    problems.append(f"{rel}: rollback without a migration ({apply_name} missing)")
                continue
            match = FILE_NAME.match(path.name)
            if not match:
                problems.append(f"{rel}: name must look like 0100_snake_case.sql")
                continue
            version = int(match["version"])
            rollback = directory / (path.name[:-4] + ROLLBACK_SUFFIX)
            if not rollback.is_file():
                problems.append(
                    f"{rel}: no rollback file ({rollback.name}); every migration needs one"
                )
            if version in found:
                other = found[version].path.relative_to(root)
                problems.append(f"{rel}: version {version:04d} already used by {other}")
                continue
            try:
                only = profile_only(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError as exc:
                raise MigrationSourceError(not_utf8(rel, exc)) from None
            found[version] = MigrationSource(version, match["name"], path, rollback, only)
    if problems:
        raise MigrationSourceError(
            "the migration files are inconsistent:\n  " + "\n  ".join(problems)
        )
    if not found:
        raise MigrationSourceError(
            f"no migration found under the SQL root {root} (its folders hold no NNNN_name.sql file)",
            hint="point NEURANT_SQL_ROOT at the package's SQL tree, or reinstall neurant-db",
        )
    return [found[v] for v in sorted(found)]


def _environment(root: Path, settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals.update(template_globals(settings.profile))
    env.globals["tables"] = for_templates(root)  # schema/_tables.toml, for the macros
    env.globals["request_role_settings"] = PROJECT_SETTINGS  # policies/0590 (role_settings.py)
    return env


def _render_file(env: jinja2.Environment, root: Path, path: Path, settings: Settings, version: int) -> str:
    rel = path.relative_to(root).as_posix()
    try:
        tables = env.globals["tables"]
        read_only: set[str] = set()
        if isinstance(tables, VersionedRegistry):
            # the loops over the registry see it as of this migration (`since`)
            tables.version = version
            read_only = {e.name for e in tables.registry.entries if e.read_only}
        return rewrite(env.get_template(rel).render(**settings.template_context()), settings.profile, read_only)
    except jinja2.TemplateSyntaxError as exc:
        raise MigrationSourceError(f"{rel}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise MigrationSourceError(
            f"{rel}: template uses an unknown variable: {exc.message}",
            hint="known variables: " + ", ".join(sorted(settings.template_context())),
        ) from None
    except UnicodeDecodeError as exc:
        raise MigrationSourceError(not_utf8(rel, exc)) from None


TRANSACTION_CONTROL = re.compile(
    r"^(begin|start\s+transaction|commit|end|rollback|abort|savepoint|release|prepare\s+transaction|vacuum"
    r"|create\s+(unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|reindex\b.*\bconcurrently"
    r"|create\s+database|drop\s+database|alter\s+system)\b",
    re.IGNORECASE | re.DOTALL,
)


# Statements a no-transaction migration may run (each in its own implicit transaction).
ONLINE_ONLY = re.compile(
    r"^(vacuum|create\s+(unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|reindex\b.*\bconcurrently)\b",
    re.IGNORECASE | re.DOTALL,
)
NO_TRANSACTION = re.compile(r"^--\s*neurant:\s*no-transaction\s*$")


def declares_no_transaction(sql: str) -> bool:
    """Whether the opening comment (the lines before the first SQL) says `-- neurant: no-transaction`."""
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            return False
        if NO_TRANSACTION.match(stripped):
            return True
    return False


def sql_statements(sql: str) -> list[str]:
    """The top-level statements of sql (dollar quotes, strings and comments respected),
    without the comment-only pieces."""
    import sqlparse

    found = []
    for statement in sqlparse.split(sql):
        code = re.sub(r"--[^\n]*|/\*.*?\*/", " ", statement, flags=re.S).strip().strip(";").strip()
        if code:
            found.append(statement)
    return found


def transaction_control_statements(sql: str, transactional: bool = True) -> list[str]:
    """Top-level statements that would end or escape the migration's transaction
    (for a no-transaction migration: those that would open or end one)."""
    found = []
    for statement in sql_statements(sql):
        code = re.sub(r"--[^\n]*|/\*.*?\*/", " ", statement, flags=re.S).strip()
        if TRANSACTION_CONTROL.match(code) and (transactional or not ONLINE_ONLY.match(code)):
            found.append(" ".join(code.rstrip(";").split())[:60])
    return found


def render_all(settings: Settings, root: Path | None = None) -> list[Migration]:
    """Render every migration (apply and rollback) with the given settings.

    Refuses statements that end or escape the transaction the runner wraps each
    migration in: with them a failing migration would be left half-applied.
    """
    root = root or sql_root()
    env = _environment(root, settings)
    migrations = []
    for src in discover(root):
        if src.only_profile is not None and src.only_profile != settings.profile:
            continue  # `-- neurant: profile citus`: not part of the other profiles at all
        apply_sql = _render_file(env, root, src.path, settings, src.version)
        migrations.append(Migration(source=src, apply_sql=apply_sql,
                                    rollback_sql=_render_file(env, root, src.rollback_path, settings, src.version)))
    problems = []
    for m in migrations:
        for label, text in (("", m.apply_sql), (" (rollback)", m.rollback_sql)):
            for statement in transaction_control_statements(text, m.transactional):
                where = "inside the migration's transaction" if m.transactional else "in a no-transaction migration"
                problems.append(f"{m.id}{label}: `{statement}` cannot run {where}")
    if problems:
        raise MigrationSourceError(
            "migrations must not control transactions:\n  " + "\n  ".join(problems),
            hint="each migration runs in one transaction that the runner commits or rolls back as a whole; "
            "a migration that must run CONCURRENTLY or VACUUM says `-- neurant: no-transaction` in its "
            "opening comment (docs/migrations.md, Online migrations)",
        )
    return migrations


def write_rendered(migrations: list[Migration], out_dir: Path) -> list[Path]:
    """Write rendered migrations as NNNN_name.sql / NNNN_name.rollback.sql into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for m in migrations:
        for suffix, text in ((".sql", m.apply_sql), (ROLLBACK_SUFFIX, m.rollback_sql)):
            target = out_dir / f"{m.id}{suffix}"
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written
