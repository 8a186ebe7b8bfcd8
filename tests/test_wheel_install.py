"""The package ships everything it needs: the sdist and the wheel are built the way a
release is built (`python -m build`: the sdist first, the wheel from the sdist, so the
sdist is complete too), the wheel is installed into a clean virtualenv outside this
checkout, and that installation alone migrates a database, reports it up to date and
rolls it back, reading its SQL from the installed package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurant_db import __version__
from neurant_db.paths import MIGRATION_FOLDERS, sql_root
from neurant_db.render import discover
from neurant_db.testdb import test_cli_args

PROJECT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False,
                          env=env, timeout=600)
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (PROJECT / "pyproject.toml").is_file() or sql_root() != PROJECT:
        pytest.skip("needs a source checkout (this run uses an installed package)")
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, PROJECT, cwd=out)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """bin/ of a clean virtualenv holding only the wheel and its dependencies."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True, clear=True)
    (wheel,) = dist.glob("*.whl")
    run(home / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=home)
    yield home / "bin"


def clean_env() -> dict[str, str]:
    """The environment without anything pointing back at this checkout."""
    return {k: v for k, v in os.environ.items()
            if k not in {"NEURANT_SQL_ROOT", "PYTHONPATH", "VIRTUAL_ENV"} and not k.startswith("PG")}


def test_the_sdist_and_the_wheel_carry_the_version_of_the_package(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir())
    assert names == [f"neurant_db-{__version__}-py3-none-any.whl", f"neurant_db-{__version__}.tar.gz"]


def test_the_installed_package_reads_its_sql_from_site_packages(installed: Path, tmp_path: Path) -> None:
    done = run(installed / "python", "-c",
               "import json, neurant_db; from neurant_db.paths import sql_root; "
               "print(json.dumps([str(sql_root()), neurant_db.__version__]))", cwd=tmp_path, env=clean_env())
    root, version = json.loads(done.stdout)
    assert version == __version__
    assert "site-packages" in root and not root.startswith(str(PROJECT))
    shipped = [m.id for m in discover(Path(root))]
    assert shipped == [m.id for m in discover(PROJECT)]
    assert all((Path(root) / folder).is_dir() for folder in MIGRATION_FOLDERS)
    assert (Path(root) / "releases.json").is_file()


def test_the_installed_package_alone_migrates_reports_and_rolls_back(
        installed: Path, scratch_db: str, tmp_path: Path) -> None:
    cli: list[str | Path] = [installed / "neurant-db", "--database-url", scratch_db, *test_cli_args()]
    env = clean_env()
    migrated = run(*cli, "migrate", cwd=tmp_path, env=env)
    assert "applied" in migrated.stdout
    run(*cli, "status", "--exit-code", cwd=tmp_path, env=env)
    run(*cli, "doctor", "--no-schema-check", cwd=tmp_path, env=env)
    run(*cli, "rollback", "--to", "0", "--yes", cwd=tmp_path, env=env)
