"""The released versions of neurant-db, recorded in the repository itself (releases.json).

A release is a commit whose migrations are frozen from then on: the record holds the
commit, the date and, per profile, the sha256 of every migration's rendered apply and
rollback SQL (the same checksums the ledger stores, so "released" and "applied" speak
of the same bytes). A git tag `vX.Y.Z` marks the commit too, but tags need not travel
with a clone; this file does, and the tooling reads it:

- `neurant-db lint` and tests/test_releases.py: a released migration renders today to
  the recorded checksums (an edit of the file or of a macro it includes fails), none
  is gone, and every migration added after a release is numbered above it, from
  FIRST_POST_RELEASE_VERSION (4000) on;
- `neurant-db upgrade-check` without `--from`: the upgrade from the newest recorded
  release (its commit, read with git);
- `neurant-db release record VERSION`: writes the record (the version must be the
  package's own, the tree clean, the version new).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from .errors import MigrationSourceError, NeurantError
from .paths import sql_root
from .render import render_all
from .settings import PROFILES, Settings
from .sql_style import FIRST_POST_RELEASE_VERSION, StyleFinding

RELEASES_FILE = "releases.json"
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# The settings a release's checksums were rendered with (the defaults at the time).
RENDER_SETTINGS = ("embedding_dimensions", "vector_schema")

Checksums = dict[str, dict[str, dict[str, str]]]  # profile -> migration id -> {"apply", "rollback"}


class ReleaseError(NeurantError):
    """A release cannot be recorded, or the record is unreadable."""


@dataclass(frozen=True)
class Release:
    """One recorded release."""

    version: str
    commit: str
    date: str
    settings: dict[str, Any]
    migrations: Checksums = field(repr=False)

    @property
    def newest_migration(self) -> int:
        """The highest migration version the release holds (on any profile)."""
        return max(int(mid[:4]) for files in self.migrations.values() for mid in files)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "commit": self.commit, "date": self.date,
                "settings": self.settings, "migrations": self.migrations}


def releases_path(root: Path | None = None) -> Path:
    return (root or sql_root()) / RELEASES_FILE


def _parse(entry: Any, where: str) -> Release:
    if not isinstance(entry, dict):
        raise MigrationSourceError(f"{where}: a release is an object")
    version, commit = entry.get("version"), entry.get("commit")
    if not isinstance(version, str) or not VERSION.match(version):
        raise MigrationSourceError(f"{where}: version {version!r} is not X.Y.Z")
    if not isinstance(commit, str) or not COMMIT.match(commit):
        raise MigrationSourceError(f"{where} ({version}): commit {commit!r} is not a full git commit id")
    migrations = entry.get("migrations")
    if not isinstance(migrations, dict) or set(migrations) - set(PROFILES) or not migrations:
        raise MigrationSourceError(f"{where} ({version}): migrations must map profiles ({', '.join(PROFILES)}) "
                                   "to checksums")
    for profile, files in migrations.items():
        for mid, sums in files.items():
            if not (isinstance(sums, dict) and set(sums) == {"apply", "rollback"}
                    and all(isinstance(s, str) and SHA256.match(s) for s in sums.values())):
                raise MigrationSourceError(f"{where} ({version}): {profile} {mid}: expected apply and rollback sha256")
    return Release(version, commit, str(entry.get("date", "")), dict(entry.get("settings") or {}), migrations)


def load_releases(root: Path | None = None) -> list[Release]:
    """Every recorded release, oldest first (none: an empty list)."""
    path = releases_path(root)
    if not path.is_file():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MigrationSourceError(
            f"{path}: not readable as JSON ({exc})",
            hint="restore it from git: it is written by `neurant-db release record` only") from None
    entries = document.get("releases") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise MigrationSourceError(f"{path}: expected an object with a list `releases`")
    return [_parse(entry, f"{path.name} release {i + 1}") for i, entry in enumerate(entries)]


def newest_release(root: Path | None = None) -> Release | None:
    releases = load_releases(root)
    return releases[-1] if releases else None


def find_release(name: str, root: Path | None = None) -> Release | None:
    """The recorded release named `0.1.0` or `v0.1.0`, if any."""
    version = name[1:] if name.startswith("v") else name
    return next((r for r in load_releases(root) if r.version == version), None)


def current_checksums(root: Path | None = None, settings: dict[str, Any] | None = None) -> Checksums:
    """Per profile, the checksums of every migration of the tree as it renders today."""
    sums: Checksums = {}
    for profile in PROFILES:
        rendered = render_all(Settings(profile=profile, **(settings or {})).validate(), root)
        sums[profile] = {m.id: {"apply": m.checksum, "rollback": m.rollback_checksum} for m in rendered}
    return sums


def immutability_findings(root: Path | None = None) -> list[StyleFinding]:
    """What breaks the releases' promise: a released migration edited or gone, or a new one
    numbered below the newest release or below FIRST_POST_RELEASE_VERSION."""
    releases = load_releases(root)
    if not releases:
        return []
    found: list[StyleFinding] = []
    rendered: dict[str, Checksums] = {}
    for release in releases:
        key = json.dumps(release.settings, sort_keys=True)
        if key not in rendered:
            rendered[key] = current_checksums(root, release.settings)
        now = rendered[key]
        for profile, files in release.migrations.items():
            for mid, sums in sorted(files.items()):
                today = now[profile].get(mid)
                where = _path_of(mid, root)
                if today is None:
                    found.append(StyleFinding(where, 1, "release.gone",
                                              f"{mid} was released in {release.version} ({profile}) and is gone"))
                    continue
                for part in ("apply", "rollback"):
                    if today[part] != sums[part]:
                        found.append(StyleFinding(
                            where, 1, "release.immutable",
                            f"{mid} ({profile}, {part}) renders differently from release {release.version}: "
                            "released migrations are immutable; undo the edit (or of the macro it includes) "
                            f"and put the change in a new migration numbered {FIRST_POST_RELEASE_VERSION} or up"))
    newest = releases[-1]
    released = {mid for r in releases for files in r.migrations.values() for mid in files}
    floor = max(newest.newest_migration, FIRST_POST_RELEASE_VERSION - 1)
    for mid in sorted({mid for files in rendered[json.dumps(newest.settings, sort_keys=True)].values()
                       for mid in files} - released):
        if int(mid[:4]) <= floor:
            found.append(StyleFinding(
                _path_of(mid, root), 1, "release.numbering",
                f"{mid} is not part of release {newest.version} but numbered {mid[:4]}: a migration added after "
                f"a release is numbered above every released one, from {FIRST_POST_RELEASE_VERSION} on"))
    return found


def _path_of(mid: str, root: Path | None) -> str:
    base = root or sql_root()
    for path in sorted(base.glob(f"*/{mid}.sql")):
        return str(path.relative_to(base))
    return mid


def record_release(version: str, commit: str, root: Path | None = None, *, package_version: str,
                   today: date | None = None) -> Release:
    """Append the release of `commit` (the tree as it is now) to releases.json."""
    if not VERSION.match(version):
        raise ReleaseError(f"{version!r} is not a version X.Y.Z")
    if version != package_version:
        raise ReleaseError(f"the package says it is {package_version}, not {version}",
                           hint="set __version__ in runner/neurant_db/__init__.py (the one place) and commit first")
    if not COMMIT.match(commit):
        raise ReleaseError(f"{commit!r} is not a full git commit id")
    releases = load_releases(root)
    if any(r.version == version for r in releases):
        raise ReleaseError(f"release {version} is recorded already", hint="a release is recorded once")
    defaults = Settings()
    settings = {name: getattr(defaults, name) for name in RENDER_SETTINGS}
    release = Release(version, commit, (today or date.today()).isoformat(), settings,
                      current_checksums(root, settings))
    if releases and release.newest_migration <= releases[-1].newest_migration:
        raise ReleaseError(f"release {version} adds no migration above {releases[-1].version}'s")
    document = {
        "comment": "The released versions of neurant-db and the checksums of their migrations, per profile "
                   "(runner/neurant_db/releases.py). Written by `neurant-db release record`, never by hand: "
                   "released migrations are immutable.",
        "releases": [r.as_dict() for r in (*releases, release)],
    }
    releases_path(root).write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return release
