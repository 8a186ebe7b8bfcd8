"""`neurant-db citus ...`: the distribution of the schema on a Citus cluster (citus.py)."""

from __future__ import annotations

import click

from ..citus import format_plan, read_plan
from .context import Context, pass_ctx
from .json_output import emit, json_option


@click.group()
def citus() -> None:
    """Profile citus: the distribution of the schema on a Citus cluster (docs/scale-out.md).

    \b
    Example:
      neurant-db --profile citus citus plan
    """


@citus.command("plan")
@json_option()
@pass_ctx
def citus_plan(c: Context, as_json: bool) -> None:
    """Print where every table goes on Citus, in distribution order: position, table,
    placement (reference or distributed), distribution column, colocate_with, and, on a
    Citus server, whether it is distributed already.

    \b
    Example:
      neurant-db --profile citus citus plan
      neurant-db --profile citus citus plan --json | jq '.tables[] | select(.distributed == false)'
    """
    with c.target().connect(purpose="citus plan") as conn:
        plan, on_citus = read_plan(conn)
    if as_json:
        emit({"citus": on_citus, "tables": [t.as_dict() for t in plan]})
        return
    for line in format_plan(plan, on_citus):
        click.echo(line)
