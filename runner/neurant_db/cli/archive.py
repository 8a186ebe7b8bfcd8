"""`neurant-db archive ...`: cold-storage exports and legal holds (a thin click layer
over cold_storage.py and legal_holds.py)."""

from __future__ import annotations

from pathlib import Path

import click

from ..cold_storage import restore_export, verify_export
from ..legal_holds import list_holds, place_hold, release_hold
from .context import Context, pass_ctx
from .json_output import emit, json_option


@click.group()
def archive() -> None:
    """Cold-storage exports and legal holds.

    \b
    Example:
      neurant-db archive verify /var/lib/neurant/cold/20261125T020000Z-1a2b3c4d
      neurant-db archive restore /var/lib/neurant/cold/20261125T020000Z-1a2b3c4d
      neurant-db archive hold --company UUID --reason "case 42" --by legal@example.com
    """


@archive.command("verify")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
def archive_verify(directory: Path) -> None:
    """Check an export against its manifest (checksums, row counts, JSON lines).

    \b
    Example:
      neurant-db archive verify /var/lib/neurant/cold/20261125T020000Z-1a2b3c4d
    """
    counts = verify_export(directory)
    for table, n in counts.items():
        click.echo(f"  {table:<40} {n:>10}")
    click.echo(f"ok: {sum(counts.values())} rows match the manifest")


@archive.command("restore")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--dry-run", is_flag=True, help="Verify and count; restore nothing.")
@click.option("--allow-unrecorded", is_flag=True,
              help="Restore an export that private.cold_exports does not list (e.g. into another database).")
@pass_ctx
def archive_restore(c: Context, directory: Path, dry_run: bool, allow_unrecorded: bool) -> None:
    """Read a cold export back into the archive tables (verified first; all or nothing).

    \b
    Example:
      neurant-db archive restore /var/lib/neurant/cold/20261125T020000Z-1a2b3c4d
    """
    counts = restore_export(c.target(), directory, dry_run=dry_run, allow_unrecorded=allow_unrecorded)
    for table, n in counts.items():
        click.echo(f"  {table:<40} {n:>10}")
    click.echo(f"{'would restore' if dry_run else 'restored'} {sum(counts.values())} rows from {directory}")


@archive.command("hold")
@click.option("--company", required=True, help="Company id (uuid).")
@click.option("--conversation", default=None, help="Conversation id (uuid); omit to hold the whole company.")
@click.option("--reason", required=True, help="Why (case, request, regulation).")
@click.option("--by", "set_by", required=True, help="Who sets the hold (person, e-mail, ticket).")
@pass_ctx
def archive_hold(c: Context, company: str, conversation: str | None, reason: str, set_by: str) -> None:
    """Place a legal hold: nothing it covers is archived, exported-and-deleted or deleted.

    \b
    Example:
      neurant-db archive hold --company 2f0c... --reason "litigation 2026-17" --by legal@neurant.io
    """
    hold_id = place_hold(c.target(), company=company, conversation=conversation, reason=reason, set_by=set_by)
    click.echo(f"legal hold {hold_id} set")


@archive.command("release")
@click.argument("hold_id")
@click.option("--company", required=True, help="Company id of the hold.")
@click.option("--by", "released_by", required=True, help="Who releases it.")
@pass_ctx
def archive_release(c: Context, hold_id: str, company: str, released_by: str) -> None:
    """Release a legal hold (kept as history).

    \b
    Example:
      neurant-db archive release 7d1e... --company 2f0c... --by legal@neurant.io
    """
    release_hold(c.target(), hold_id=hold_id, company=company, released_by=released_by)
    click.echo(f"legal hold {hold_id} released")


@archive.command("holds")
@click.option("--all", "show_all", is_flag=True, help="Include released holds.")
@json_option()
@pass_ctx
def archive_holds(c: Context, show_all: bool, as_json: bool) -> None:
    """List legal holds (active ones unless --all).

    \b
    Example:
      neurant-db archive holds --all
      neurant-db archive holds --json | jq '.[] | select(.active)'
    """
    holds = list_holds(c.target(), include_released=show_all)
    if as_json:
        emit([h.as_dict() for h in holds])
        return
    for h in holds:
        scope = f"conversation {h.conversation_id}" if h.conversation_id else "whole company"
        state = f"released {h.released_at:%Y-%m-%d}" if h.released_at else "ACTIVE"
        click.echo(f"{h.id}  company {h.company_id}  {scope}  {state}  by {h.set_by}: {h.reason}")
    if not holds:
        click.echo("no legal holds")
