"""`neurant-db erase`: end-user erasure (GDPR Art. 17), a thin click layer over erasure.py."""

from __future__ import annotations

from pathlib import Path

import click

from ..erasure import erase, erase_pending, export_ledger, replay
from ..errors import NeurantError
from .context import Context, pass_ctx
from .json_output import emit, json_option


@click.command("erase")
@click.option("--company", default=None, help="Company id (uuid) of the end user.")
@click.option("--end-user", "end_user_id", default=None, help="The end_user_id of their conversations.")
@click.option("--reason", default=None, help="Ticket or legal basis, 3-500 characters, no personal data.")
@click.option("--pending", is_flag=True,
              help="Instead: carry out the cold-file part of requests a company-wide hold deferred "
                   "(after its release) or an interruption left undone.")
@click.option("--replay-from", "replay_from", default=None, metavar="SOURCE",
              help="Instead: after a restore or an import, carry out again every request of a newer ledger "
                   "this database lacks. SOURCE: the postgresql:// URL of the database whose ledger is newer, "
                   "or a file written by --export-ledger. With --company: that company's requests only.")
@click.option("--export-ledger", "export_to", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Instead: write this database's ledger (ids, subject hashes, reasons: no personal data) "
                   "to a JSON file, for --replay-from where this database is out of reach.")
@json_option()
@pass_ctx
def erase_cmd(c: Context, company: str | None, end_user_id: str | None, reason: str | None, pending: bool,
              replay_from: str | None, export_to: Path | None, as_json: bool) -> None:
    """Erase one end user: redact their conversations, messages, reactions and escalations in
    the live and archive tables and in the cold-storage files (held conversations wait for
    their hold's release), record the request in private.erasure_ledger, and print the
    tenant's receipt (JSON).

    \b
    Example:
      neurant-db erase --company 2f0c... --end-user +34600000001 --reason "GDPR request 2026-118"
      neurant-db erase --pending
      neurant-db erase --export-ledger /backups/erasures.json
      neurant-db --database-url postgresql://restored/app erase --replay-from /backups/erasures.json
    """
    if replay_from is not None or export_to is not None:
        if (replay_from is not None and export_to is not None) or end_user_id or reason or pending:
            raise NeurantError("--replay-from and --export-ledger take only --company")
        if export_to is not None:
            emit(export_ledger(c.target(), export_to, company))
        else:
            emit(replay(c.target(), replay_from or "", company=company))
        return
    if pending:
        if company or end_user_id or reason:
            raise NeurantError("--pending takes no --company, --end-user or --reason")
        emit(erase_pending(c.target()))
        return
    if not (company and end_user_id and reason):
        raise NeurantError("erase needs --company, --end-user and --reason (or --pending)")
    emit(erase(c.target(), company=company, end_user_id=end_user_id, reason=reason))
