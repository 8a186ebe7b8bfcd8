"""`neurant-db restore-check`: the restore drill with pgBackRest (restore_check.py)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import psycopg

from ..errors import BadArgument, NeurantError
from ..restore_check import DrillOptions, print_report, run_drill, write_evidence
from .context import Context, pass_ctx
from .json_output import emit, json_option


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, eq, setting = value.partition("=")
        if not eq or not name.strip():
            raise BadArgument(f"{option} {value!r}: give NAME=VALUE")
        out[name.strip().lstrip("-")] = setting
    return out


def _target(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadArgument(f"--target-time {text!r}: not a timestamp",
                          hint="write it as 2026-01-31 23:59:59+00 (ISO 8601, with its time zone)") from None
    if ts.tzinfo is None:
        raise BadArgument(f"--target-time {text!r}: give its time zone (+00 for UTC)")
    return ts.astimezone(UTC)


@click.command("restore-check")
@click.option("--stanza", required=True, help="The pgBackRest stanza of the source cluster.")
@click.option("--pgbackrest-config", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="pgBackRest configuration file (default: pgBackRest's own, /etc/pgbackrest/pgbackrest.conf).")
@click.option("--pgbackrest", "pgbackrest_bin", default="pgbackrest", show_default=True, metavar="PATH",
              help="The pgbackrest executable.")
@click.option("--pgbackrest-option", "pgbackrest_options", multiple=True, metavar="NAME=VALUE",
              help="Any other pgBackRest option for every command (repeatable), e.g. repo1-path=/backups "
              "(values of options named like a secret are masked in the evidence).")
@click.option("--backup/--no-backup", default=True, show_default=True,
              help="Take a backup first, or restore from the latest one in the repository.")
@click.option("--backup-type", type=click.Choice(("full", "diff", "incr")), default="full", show_default=True)
@click.option("--target-time", default=None, metavar="TIMESTAMP",
              help="Restore to this moment (ISO 8601 with time zone) instead of the drill's own target; "
              "the copy's tables are then counted but not compared with the source.")
@click.option("--scratch-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="New or empty folder the copy is restored into (default: a temporary folder); "
              "it needs room for the whole cluster.")
@click.option("--scratch-port", type=click.IntRange(1024, 65535), default=None,
              help="Port of the scratch cluster (its unix socket lives in the scratch folder; no TCP). "
              "Default: a free one.")
@click.option("--scratch-setting", "scratch_settings", multiple=True, metavar="NAME=VALUE",
              help="A server setting for the scratch cluster (repeatable), e.g. shared_buffers=256MB.")
@click.option("--keep-scratch", is_flag=True, help="Leave the restored copy in the scratch folder (stopped).")
@click.option("--pg-bindir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder of the server's pg_ctl (default: /usr/lib/postgresql/<major>/bin, else pg_config's).")
@click.option("--os-user", default=None,
              help="System user running pgbackrest and the scratch cluster (root only; default postgres as root).")
@click.option("--isolation-sample", type=click.IntRange(min=0), default=200, show_default=True, metavar="N",
              help="Cells of the isolation matrix probed on the copy, at least one per table (0: none).")
@click.option("--seed", type=int, default=None,
              help="Seed of the isolation sample (default: a new one each drill, recorded in the evidence).")
@click.option("--no-schema-check", is_flag=True,
              help="Skip doctor's schema comparison with a reference build (built in the scratch cluster).")
@click.option("--lock-timeout", type=click.IntRange(min=1), default=30, show_default=True, metavar="SECONDS",
              help="How long the drill waits to pause the writes before hashing the source.")
@click.option("--start-timeout", type=click.IntRange(min=10), default=3600, show_default=True, metavar="SECONDS",
              help="How long the scratch cluster may take to start and recover.")
@click.option("--max-rpo", type=click.IntRange(min=1), default=900, show_default=True, metavar="SECONDS",
              help="archive_timeout must be below this (the RPO the archive promises).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the evidence (every check, RPO, RTO, per-table counts and hashes) as JSON here.")
@json_option("Print the evidence as JSON instead of text.")
@pass_ctx
def restore_check(c: Context, stanza: str, pgbackrest_config: Path | None, pgbackrest_bin: str,
                  pgbackrest_options: tuple[str, ...], backup: bool, backup_type: str, target_time: str | None,
                  scratch_dir: Path | None, scratch_port: int | None, scratch_settings: tuple[str, ...],
                  keep_scratch: bool, pg_bindir: Path | None, os_user: str | None, isolation_sample: int,
                  seed: int | None, no_schema_check: bool, lock_timeout: int, start_timeout: int, max_rpo: int,
                  out: Path | None, as_json: bool) -> None:
    """Restore drill: back up the database with pgBackRest, restore it to a point in time
    into a scratch cluster and prove the copy (heartbeats, migration ledger and checksums,
    doctor, RLS forced, a sample of the isolation matrix, row counts and hashes of every
    table against the source at that moment). Prints RPO and RTO; exit 1 when any check
    fails. The database of --database-url is the source; run as the user that owns the
    pgBackRest repository (usually postgres). See docs/operations.md, "Restore drill".

    \b
    Example:
      sudo -u postgres neurant-db --database-url 'postgresql:///app?host=/var/run/postgresql' \\
          restore-check --stanza main --out /var/log/neurant/restore-drill.json
      neurant-db restore-check --stanza main --no-backup --target-time '2026-01-31 23:00:00+00'
    """
    options = DrillOptions(
        stanza=stanza, pgbackrest_config=pgbackrest_config, pgbackrest_bin=pgbackrest_bin,
        pgbackrest_options=_pairs(pgbackrest_options, "--pgbackrest-option"), backup=backup,
        backup_type=backup_type, target_time=_target(target_time), scratch_dir=scratch_dir,
        scratch_port=scratch_port, scratch_settings=_pairs(scratch_settings, "--scratch-setting"),
        keep_scratch=keep_scratch, pg_bindir=pg_bindir, os_user=os_user, isolation_sample=isolation_sample,
        seed=seed, schema_check=not no_schema_check, lock_timeout_s=lock_timeout, start_timeout_s=start_timeout,
        max_rpo_s=max_rpo)
    target = c.target()
    if not as_json:
        click.echo(f"restore drill: {target.redacted}, pgBackRest stanza {stanza}")
    report = None
    try:
        report = run_drill(target, options, c.settings(),
                           progress=None if as_json else (lambda text: click.echo(f"  {text}")))
    except (NeurantError, psycopg.Error) as exc:
        if out is not None and getattr(exc, "report", None) is not None:
            write_evidence(exc.report, out)  # type: ignore[union-attr]
        raise
    finally:
        if out is not None and report is not None:
            write_evidence(report, out)
    if as_json:
        emit(report.as_dict())
    else:
        print_report(report, click.echo)
        if out is not None:
            click.echo(f"evidence: {out}")
    if not report.ok:
        sys.exit(1)
