"""`neurant-db tenant`: export, import and delete one tenant, a thin click layer over
tenant_transfer.py."""

from __future__ import annotations

from pathlib import Path

import click

from ..tenant_transfer import delete_tenant, export_tenant, import_tenant
from .context import Context, pass_ctx
from .json_output import emit


@click.group("tenant")
def tenant() -> None:
    """Move a whole tenant: a consistent export of every tenant table (live and archive), its
    import into another database through the same rules, and its deletion once exported.

    \b
    Example:
      neurant-db tenant export 2f0c... --out /backups/tenant-2f0c
      neurant-db --database-url postgresql://db2/app tenant import /backups/tenant-2f0c
      neurant-db tenant delete 2f0c... --verified-export /backups/tenant-2f0c
    """


@tenant.command("export")
@click.argument("company")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New or empty directory for the files and manifest.json.")
@pass_ctx
def export_cmd(c: Context, company: str, out_dir: Path) -> None:
    """Write one snapshot of COMPANY (one REPEATABLE READ, READ ONLY transaction): one COPY
    file per tenant table of the table registry, the identities it references, its cold
    exports' manifests, and manifest.json (columns, row counts, sha256, schema version).
    Prints a summary (JSON).

    \b
    Example:
      neurant-db tenant export 2f0c... --out /backups/tenant-2f0c
    """
    manifest = export_tenant(c.target(), company, out_dir)
    emit({"company": company, "out": str(out_dir), "schema": manifest["schema"]["newest_migration"],
          "rows": {t: e["rows"] for t, e in manifest["tables"].items()},
          "cold_exports": len(manifest["cold_exports"])})


@tenant.command("import")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--replay-erasures-from", "replay_from", default=None, metavar="SOURCE",
              help="After the loaded rows are verified, in the same transaction, carry out again the "
                   "tenant's erasures requested since the export: SOURCE is the postgresql:// URL of the "
                   "source database or a file of `neurant-db erase --export-ledger`.")
@pass_ctx
def import_cmd(c: Context, directory: Path, replay_from: str | None) -> None:
    """Load a tenant export into this database (same or newer schema) in one transaction:
    constraints, foreign keys and tenant guards checked, ids kept, the bookkeeping not run
    twice (import mode, functions/4400); counts and sha256 of every table verified before
    the commit. Refuses a newer schema, a changed or missing file and any row already
    present; then nothing is loaded. The snapshot's own erasure ledger is loaded as data; the
    erasures made after the export are in the source's newer ledger: --replay-erasures-from.

    \b
    Example:
      neurant-db --database-url postgresql://db2/app tenant import /backups/tenant-2f0c \\
          --replay-erasures-from postgresql://db1/app
    """
    emit(import_tenant(c.target(), directory, replay_from=replay_from))


@tenant.command("delete")
@click.argument("company")
@click.option("--verified-export", "export_dir", required=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The tenant's export: its hashes must still match the live data.")
@pass_ctx
def delete_cmd(c: Context, company: str, export_dir: Path) -> None:
    """Delete COMPANY and everything it owns, only if EXPORT_DIR holds it exactly as it is
    now (every table's count and sha256 recomputed in one snapshot). An active legal hold
    refuses it. Prints what went and what stays (the audit trail).

    \b
    Example:
      neurant-db tenant delete 2f0c... --verified-export /backups/tenant-2f0c
    """
    emit(delete_tenant(c.target(), company, export_dir))
