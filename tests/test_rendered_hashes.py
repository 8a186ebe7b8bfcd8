"""The vanilla and supabase renderings never change by accident (CONVENTIONS.md, "Profiles"):
the sha256 of every rendered migration and rollback of both profiles is pinned in
tests/rendered_hashes.json. Text written for another profile (citus) must vanish from
them byte for byte, blank lines included.

When a change to these renderings is intended, regenerate the pins and commit them with
the change (the diff of the JSON names every file whose rendering changed):

    .venv/bin/python -m tests.test_rendered_hashes
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from neurant_db.render import ROLLBACK_SUFFIX, render_all
from neurant_db.settings import Settings

PINNED = Path(__file__).with_name("rendered_hashes.json")
PROFILES = ("vanilla", "supabase")
REGENERATE = ".venv/bin/python -m tests.test_rendered_hashes"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rendered_hashes(root: Path | None = None) -> dict[str, dict[str, str]]:
    """Per profile: file name (as `neurant-db render` writes it) -> sha256 of its text,
    rendered with the default settings."""
    hashes: dict[str, dict[str, str]] = {}
    for profile in PROFILES:
        files: dict[str, str] = {}
        for m in render_all(Settings(profile=profile).validate(), root):
            files[f"{m.id}.sql"] = _sha256(m.apply_sql)
            files[f"{m.id}{ROLLBACK_SUFFIX}"] = _sha256(m.rollback_sql)
        hashes[profile] = files
    return hashes


def _document(hashes: dict[str, dict[str, str]]) -> dict[str, object]:
    defaults = Settings()
    return {
        "comment": "sha256 of every rendered migration and rollback of the vanilla and supabase profiles "
                   f"(tests/test_rendered_hashes.py); regenerate with: {REGENERATE}",
        "settings": {"embedding_dimensions": defaults.embedding_dimensions,
                     "vector_schema": defaults.vector_schema},
        "profiles": hashes,
    }


def test_vanilla_and_supabase_renderings_are_byte_identical_to_the_pinned_hashes() -> None:
    pinned: dict[str, dict[str, str]] = json.loads(PINNED.read_text(encoding="utf-8"))["profiles"]
    current = rendered_hashes()
    changes = []
    for profile in PROFILES:
        was, now = pinned.get(profile, {}), current[profile]
        changes += [f"{profile}: {name} {'changed' if name in was else 'added'}"
                    for name in sorted(now) if was.get(name) != now[name]]
        changes += [f"{profile}: {name} removed" for name in sorted(was) if name not in now]
    assert changes == [], (
        "the vanilla/supabase rendering changed:\n  " + "\n  ".join(changes) + "\n"
        "Text for another profile must vanish from them (jinja whitespace control `{%-`/`-%}`, "
        "CONVENTIONS.md \"Profiles\"). If the change is intended, regenerate the pins with "
        f"`{REGENERATE}` and commit tests/rendered_hashes.json with it.")


if __name__ == "__main__":
    PINNED.write_text(json.dumps(_document(rendered_hashes()), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {PINNED}")
