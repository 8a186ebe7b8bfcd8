"""`neurant-db upgrade-check`: the upgrade from a previous release proved on a scratch
database (upgrade_check.py)."""

from __future__ import annotations

import json
import sys

import click

from ..paths import sql_root
from ..upgrade_check import git_location, print_report, release_ref, resolve_ref, run_upgrade_check
from .context import Context, pass_ctx
from .json_output import json_option


@click.command("upgrade-check")
@click.option("--from", "from_ref", default=None, metavar="REF",
              help="What to upgrade from: a recorded release (0.1.0), or any git ref (tag, branch, commit). "
              "Default: the newest release recorded in releases.json.")
@json_option("Machine-readable report.")
@click.option("--rows", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Also generate about N rows on top of the fixtures (a populated upgrade).")
@pass_ctx
def upgrade_check(c: Context, from_ref: str | None, as_json: bool, rows: int) -> None:
    """Prove the upgrade from a previous release loses no data: build REF's schema in
    a scratch database of the server, load REF's test fixtures, migrate to this tree
    and compare every table of public/private/archive (rows and contents). Exit 1 on
    any loss or undeclared change; the scratch database is always dropped.

    \b
    Example:
      neurant-db upgrade-check                  # from the newest recorded release
      neurant-db upgrade-check --from 0.1.0 --rows 2000
      neurant-db upgrade-check --from v0.1.0 --rows 5000
      neurant-db --database-url postgresql://ci@db/postgres upgrade-check --from origin/main --json
    """
    from_ref = release_ref(from_ref)
    resolve_ref(git_location(sql_root())[0], from_ref)  # a bad ref fails before any server starts
    target = c.target()
    if not as_json:
        click.echo(f"upgrade check: {from_ref} -> working tree, on {target.redacted}")
    report = run_upgrade_check(target, from_ref, c.settings(),
                               progress=None if as_json else (lambda text: click.echo(f"  {text}")), rows=rows)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        print_report(report, click.echo)
    if not report.ok:
        sys.exit(1)
