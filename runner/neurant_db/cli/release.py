"""`neurant-db release`: record a release in releases.json, check that released
migrations are untouched (releases.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import click

from .. import __version__
from ..errors import NeurantError
from ..paths import sql_root
from ..releases import immutability_findings, load_releases, record_release, releases_path
from ..upgrade_check import git_location, resolve_ref
from .json_output import json_option


@click.group()
def release() -> None:
    """Record releases and keep released migrations immutable (releases.json).

    \b
    Example:
      neurant-db release check
      neurant-db release record 0.2.0
    """


def _clean_tree() -> None:
    repo, _prefix = git_location(sql_root())
    done = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or done.stdout.strip():
        raise NeurantError("the work tree has uncommitted changes: a release records a commit, "
                           "and the checksums must be that commit's",
                           hint="commit (or stash) first, then record")


@release.command("record")
@click.argument("version")
@click.option("--commit", "ref", default="HEAD", show_default=True, metavar="REF",
              help="The release commit (its tree must be the working tree).")
def record(version: str, ref: str) -> None:
    """Record VERSION as released at REF: the commit and the checksums of every migration
    per profile go into releases.json (commit that file next, and tag the release commit).

    \b
    Example:
      neurant-db release record 0.1.0 && git add releases.json && git commit -m "Record release 0.1.0"
      git tag v0.1.0 "$(python -c 'import json;print(json.load(open("releases.json"))["releases"][-1]["commit"])')"
    """
    _clean_tree()
    repo, _prefix = git_location(sql_root())
    commit = resolve_ref(repo, ref)
    head = resolve_ref(repo, "HEAD")
    if commit != head:
        raise NeurantError(f"{ref} is not the checked-out commit: the checksums are read from the working tree",
                           hint=f"git checkout {ref} first")
    done = record_release(version, commit, package_version=__version__)
    click.echo(f"recorded release {done.version} at {done.commit[:12]} ({done.date}) in {releases_path()}: "
               + ", ".join(f"{len(files)} {profile} migrations" for profile, files in done.migrations.items()))


@release.command("check")
@json_option("Machine-readable findings.")
def check(as_json: bool) -> None:
    """Exit 1 when a released migration was edited or removed, or a new one is numbered
    below the newest release (or below 4000). `neurant-db lint` runs it too.

    \b
    Example:
      neurant-db release check
    """
    findings = immutability_findings()
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
        releases = load_releases()
        click.echo(f"{len(findings)} finding(s) against {len(releases)} recorded release(s)"
                   + (f" (newest {releases[-1].version})" if releases else ""))
    if findings:
        sys.exit(1)
