"""squawk (PyPI `squawk-cli`) on the rendered migrations, as part of `neurant-db lint`.

squawk lints what the runner really sends: each migration rendered with the default
settings, preceded by the runner's own preamble, so it knows the lock timeout the
runner sets (`set local lock_timeout` in the migration's transaction, or `set
lock_timeout` on the session of a `-- neurant: no-transaction` migration). Ordinary
migrations are linted as run inside a transaction (`--assume-in-transaction`), the
no-transaction ones as run outside one (squawk then asks for `if not exists` /
`if exists`: their statements must be safe to run again).

Project-wide choices live in `.squawk.toml` (rules excluded for every file, each with
its reason). Exceptions for particular migrations live in `squawk-exceptions.toml`:
which migrations (a version or a range `FROM-TO`), optionally only their `apply` or
`rollback` file, which rules, and why. An exception that no longer matches any
finding at all is itself a finding, so the list cannot silently outlive its reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NeurantError
from .migrate import header
from .online import session_settings_sql
from .render import Migration, render_all
from .settings import Settings
from .sql_style import StyleFinding

CONFIG = ".squawk.toml"
EXCEPTIONS = "squawk-exceptions.toml"
KINDS = ("apply", "rollback")
RANGE = re.compile(r"^(?P<low>\d{4})(?:-(?P<high>\d{4}))?$")


class SquawkUnavailable(NeurantError):
    """squawk is a dev dependency: its absence fails the lint, never skips it."""

    exit_code = 1


def squawk_executable() -> str:
    """squawk beside this interpreter (the virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return str(beside)
    found = shutil.which("squawk")
    if found is None:
        raise SquawkUnavailable("squawk is not installed: `neurant-db lint` runs it on the rendered migrations",
                                hint="install the dev extra: pip install -e '.[dev]' (it brings squawk-cli)")
    return found


@dataclass(frozen=True)
class Exception_:
    """One entry of squawk-exceptions.toml."""

    low: int
    high: int
    kinds: tuple[str, ...]
    rules: tuple[str, ...]
    reason: str
    label: str

    def covers(self, version: int, kind: str, rule: str) -> bool:
        return self.low <= version <= self.high and kind in self.kinds and rule in self.rules


def load_exceptions(path: Path) -> tuple[list[Exception_], list[StyleFinding]]:
    """The entries of the exceptions file, and the findings for malformed ones."""
    if not path.is_file():
        return [], []
    rel = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        return [], [StyleFinding(rel, 1, "squawk-exceptions", f"invalid TOML: {exc}")]
    entries, problems = [], []
    for n, raw in enumerate(data.get("exception", []), 1):
        where = f"exception {n}"
        match = RANGE.match(str(raw.get("migrations", "")))
        kind = raw.get("files", "both")
        rules, reason = raw.get("rules"), str(raw.get("reason", "")).strip()
        if not match or kind not in (*KINDS, "both") or not rules or not isinstance(rules, list) or len(reason) < 20:
            problems.append(StyleFinding(rel, 1, "squawk-exceptions",
                                         f"{where}: needs migrations = \"NNNN\" or \"NNNN-NNNN\", rules = [...], "
                                         "files = apply|rollback|both (default both) and a reason (a sentence)"))
            continue
        low = int(match["low"])
        high = int(match["high"] or low)
        entries.append(Exception_(low, high, KINDS if kind == "both" else (kind,), tuple(rules), reason,
                                  f"{where} ({raw['migrations']}, {kind})"))
    return entries, problems


def _write(migrations: list[Migration], settings: Settings, out: Path) -> dict[str, tuple[Migration, str, int]]:
    """Each migration's apply and rollback SQL, preceded by the runner's preamble, as files
    out/{tx,online}/<id>[.rollback].sql. Returns file name -> (migration, kind, preamble lines)."""
    files: dict[str, tuple[Migration, str, int]] = {}
    for m in migrations:
        folder = out / ("tx" if m.transactional else "online")
        folder.mkdir(exist_ok=True)
        for kind, text in (("apply", m.apply_sql), ("rollback", m.rollback_sql)):
            preamble = header(m, settings, kind) if m.transactional else session_settings_sql(settings)
            name = f"{m.id}{'.rollback' if kind == 'rollback' else ''}.sql"
            (folder / name).write_text(preamble + text, encoding="utf-8")
            files[name] = (m, kind, preamble.count("\n"))
    return files


def _run(squawk: str, config: Path, paths: list[Path], in_transaction: bool) -> list[dict[str, Any]]:
    if not paths:
        return []
    flag = "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction"
    done = subprocess.run([squawk, "--config", str(config), flag, "--reporter", "json", *map(str, paths)],
                          capture_output=True, text=True, check=False)
    try:
        found = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise SquawkUnavailable(f"squawk failed (exit {done.returncode}): "
                                f"{(done.stderr or done.stdout).strip()[:400]}") from None
    if done.returncode not in (0, 1) or not isinstance(found, list):
        raise SquawkUnavailable(f"squawk failed (exit {done.returncode}): {done.stderr.strip()[:400]}")
    return found


def check_migrations(root: Path, settings: Settings | None = None) -> list[StyleFinding]:
    """squawk's findings on the rendered migrations of root, less the justified exceptions."""
    squawk = squawk_executable()
    config = root / CONFIG
    if not config.is_file():
        return [StyleFinding(CONFIG, 1, "squawk", f"no {CONFIG} in {root}: squawk needs the project's settings")]
    settings = settings or Settings()
    migrations = render_all(settings, root)
    exceptions, found = load_exceptions(root / EXCEPTIONS)
    used: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="neurant-squawk-") as tmp:
        files = _write(migrations, settings, Path(tmp))
        reports = [*_run(squawk, config, sorted((Path(tmp) / "tx").glob("*.sql")), True),
                   *_run(squawk, config, sorted((Path(tmp) / "online").glob("*.sql")), False)]
    for report in reports:
        m, kind, preamble = files[Path(report["file"]).name]
        rule = str(report["rule_name"])
        covering = [e for e in exceptions if e.covers(m.version, kind, rule)]
        if covering:
            used.update(e.label for e in covering)
            continue
        source = m.source.path if kind == "apply" else m.source.rollback_path
        line = max(1, int(report["line"]) + 1 - preamble)
        advice = f" {report['help']}" if report.get("help") else ""
        found.append(StyleFinding(str(source.relative_to(root)), line, f"squawk:{rule}",
                                  f"{report['message']}{advice} (line {line} of the rendered SQL)"))
    for e in exceptions:
        if e.label not in used:
            found.append(StyleFinding(EXCEPTIONS, 1, "squawk-exceptions",
                                      f"{e.label}: matches no finding any more; remove it"))
    return found
