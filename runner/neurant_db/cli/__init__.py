"""The neurant-db command line: a thin click layer over the library modules, one module
per group of commands; `root` holds the group and its options, `context` what it hands
every command (the settings and the database target)."""

from __future__ import annotations

from .archive import archive
from .bench import bench
from .citus import citus
from .erase import erase_cmd
from .jobs import jobs
from .local_server import pgtap, server, test_cmd
from .migrations import baseline, migrate, preflight, repair, rollback, status
from .observe import top
from .release import release
from .restore_check import restore_check
from .root import cli
from .schema_commands import demo, docs, doctor, lint, matrix, render
from .tenant import tenant
from .upgrade_check import upgrade_check

for command in (render, migrate, rollback, preflight, status, repair, baseline, server, pgtap, test_cmd, demo,
                matrix, lint, doctor, docs, top, bench, upgrade_check, restore_check, jobs, archive,
                citus, release, erase_cmd, tenant):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="neurant-db")


__all__ = ["cli", "main"]
