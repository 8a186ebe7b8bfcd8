"""Released migrations are immutable (releases.py): releases.json records, per release, the
commit and the checksums of every rendered migration per profile; an edit of a released file
(or of a macro it includes), a removed one, or a new one numbered at or below a release fails
`neurant-db release check` and `neurant-db lint`; `upgrade-check` starts from the recorded
release's commit. Tiny git repositories in tmp_path play the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from neurant_db import __version__
from neurant_db.cli import cli
from neurant_db.errors import BadArgument
from neurant_db.releases import (
    ReleaseError,
    immutability_findings,
    load_releases,
    newest_release,
    record_release,
    releases_path,
)
from neurant_db.testdb import TestDatabase, test_settings
from neurant_db.upgrade_check import UpgradeCheckError, release_ref, run_upgrade_check

from .conftest import git, project_tree, write


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose release 0.1.0 holds a widgets table built with a macro, and fixtures."""
    root = project_tree(tmp_path / "repo", {"schema/0010_widgets.sql": (
        "-- widgets\n{% from 'schema/_columns.sql' import audit_columns -%}\n"
        "create table public.widgets (id int primary key, name text, {{ audit_columns() }});\n",
        "-- undoes 0010\ndrop table public.widgets;\n")},
        "insert into public.widgets (id, name) values (1, 'one'), (2, 'two');\n", monkeypatch)
    (root / "schema/_columns.sql").write_text(
        "{% macro audit_columns() %}updated_at timestamptz not null default now(){% endmacro %}\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "0.1.0")
    return root


def released(root: Path) -> Path:
    """Record 0.1.0 at HEAD and commit the record, as a release is made."""
    record_release("0.1.0", git(root, "rev-parse", "HEAD"), root, package_version="0.1.0")
    git(root, "add", "releases.json")
    git(root, "commit", "-q", "-m", "Record release 0.1.0")
    return root


def rules(root: Path) -> list[tuple[str, str]]:
    return [(f.rule, f.path) for f in immutability_findings(root)]


def release_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, ["release", *args])


def test_the_record_holds_the_commit_and_every_migration_per_profile(project: Path) -> None:
    released(project)
    (release,) = load_releases(project)
    assert release.version == "0.1.0"
    assert release.commit == git(project, "rev-parse", "HEAD~1")
    assert set(release.migrations) == {"vanilla", "supabase", "citus"}
    assert all(set(files) == {"0010_widgets"} for files in release.migrations.values())
    assert rules(project) == []


def test_an_edited_released_migration_is_refused(project: Path) -> None:
    released(project)
    path = project / "schema/0010_widgets.sql"
    path.write_text(path.read_text(encoding="utf-8").replace("name text", "name text not null"), encoding="utf-8")
    assert ("release.immutable", "schema/0010_widgets.sql") in rules(project)
    result = release_cli("check")
    assert result.exit_code == 1, result.output
    assert "renders differently from release 0.1.0" in result.output


def test_an_edited_macro_that_a_released_migration_includes_is_refused(project: Path) -> None:
    released(project)
    (project / "schema/_columns.sql").write_text(
        "{% macro audit_columns() %}updated_at timestamptz{% endmacro %}\n", encoding="utf-8")
    assert ("release.immutable", "schema/0010_widgets.sql") in rules(project)


def test_an_edited_released_rollback_is_refused_too(project: Path) -> None:
    released(project)
    (project / "schema/0010_widgets.rollback.sql").write_text("-- undoes 0010\ndrop table public.widgets cascade;\n",
                                                             encoding="utf-8")
    findings = immutability_findings(project)
    assert any(f.rule == "release.immutable" and "rollback" in f.message for f in findings)


def test_a_removed_released_migration_is_refused(project: Path) -> None:
    released(project)
    write(project, "schema/0020_gadgets.sql", "-- gadgets\ncreate table public.gadgets (id int primary key);\n",
          "-- undoes 0020\ndrop table public.gadgets;\n")
    (project / "schema/0010_widgets.sql").unlink()
    (project / "schema/0010_widgets.rollback.sql").unlink()
    assert ("release.gone", "0010_widgets") in rules(project)


def test_a_migration_added_after_the_release_is_numbered_from_4000(project: Path) -> None:
    released(project)
    write(project, "schema/0020_gadgets.sql", "-- gadgets\ncreate table public.gadgets (id int primary key);\n",
          "-- undoes 0020\ndrop table public.gadgets;\n")
    assert rules(project) == [("release.numbering", "schema/0020_gadgets.sql")]
    (project / "schema/0020_gadgets.sql").rename(project / "schema/4000_gadgets.sql")
    (project / "schema/0020_gadgets.rollback.sql").rename(project / "schema/4000_gadgets.rollback.sql")
    assert rules(project) == []


def test_a_release_is_recorded_once_and_only_under_the_packages_version(project: Path) -> None:
    released(project)
    commit = git(project, "rev-parse", "HEAD")
    with pytest.raises(ReleaseError, match="recorded already"):
        record_release("0.1.0", commit, project, package_version="0.1.0")
    with pytest.raises(ReleaseError, match=r"the package says it is 0\.1\.0, not 0\.2\.0"):
        record_release("0.2.0", commit, project, package_version="0.1.0")
    with pytest.raises(ReleaseError, match="adds no migration"):
        record_release("0.2.0", commit, project, package_version="0.2.0")


def test_recording_refuses_a_work_tree_with_uncommitted_changes(project: Path) -> None:
    (project / "schema/0010_widgets.sql").write_text("-- widgets\nselect 1;\n", encoding="utf-8")
    result = release_cli("record", __version__)
    assert result.exit_code != 0
    assert "uncommitted changes" in result.output
    assert not releases_path(project).exists()


def test_recording_through_the_cli_writes_head_and_the_checksums(project: Path) -> None:
    result = release_cli("record", __version__)
    assert result.exit_code == 0, result.output
    release = newest_release(project)
    assert release is not None and release.commit == git(project, "rev-parse", "HEAD")
    assert json.loads(releases_path(project).read_text(encoding="utf-8"))["releases"][0]["version"] == __version__


def test_a_hand_edited_record_is_a_clear_error(project: Path) -> None:
    released(project)
    path = releases_path(project)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["releases"][0]["commit"] = "v0.1.0"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = release_cli("check")
    assert result.exit_code != 0
    assert "not a full git commit id" in result.output
    assert "Traceback" not in result.output


def test_without_a_recorded_release_there_is_nothing_to_upgrade_from(project: Path) -> None:
    with pytest.raises(BadArgument, match="no release is recorded"):
        release_ref(None, project)


def test_a_recorded_release_whose_commit_is_not_in_the_clone_is_an_error_not_a_skip(project: Path) -> None:
    released(project)
    path = releases_path(project)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["releases"][0]["commit"] = "0" * 40
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UpgradeCheckError, match="which this clone does not have"):
        release_ref(None, project)


def test_the_upgrade_check_starts_from_the_recorded_release(neurant_server: TestDatabase, project: Path) -> None:
    released(project)
    write(project, "schema/4000_widgets_colour.sql",
          "-- domain 0: widgets get a colour\nalter table public.widgets add column colour text;\n",
          "-- undoes 4000\nalter table public.widgets drop column colour;\n")
    commit = release_ref(None, project)
    assert commit == git(project, "rev-parse", "HEAD~1")
    assert release_ref("v0.1.0", project) == commit
    report = run_upgrade_check(neurant_server.target, commit, test_settings(), root=project)
    assert report.ok
    assert [(t.table, t.rows_before, t.rows_after) for t in report.tables if t.table == "public.widgets"] == [
        ("public.widgets", 2, 2)]


def test_the_released_migrations_of_this_repository_render_as_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURANT_SQL_ROOT", raising=False)
    assert [str(f) for f in immutability_findings()] == []
