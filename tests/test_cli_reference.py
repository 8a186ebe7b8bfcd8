"""docs/cli.md, the command-line reference, is generated from the commands' own help by
walking the click tree, and the committed file is fresh."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.cli_reference import render_cli_reference
from neurant_db.repo_docs import CLI_REFERENCE, COMMAND, generated, stale

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_cli_reference_is_fresh() -> None:
    assert CLI_REFERENCE not in stale(ROOT, cli), f"regenerate with: {COMMAND}"


def test_the_cli_reference_shows_every_command_with_its_usage_and_options() -> None:
    text = generated(ROOT, cli)[CLI_REFERENCE]
    for path in ("neurant-db migrate", "neurant-db jobs run", "neurant-db archive hold", "neurant-db server start"):
        assert f"\n## {path}\n" in text
        assert f"Usage: {path} [OPTIONS]" in text
    assert "--dry-run" in text and "Example:" in text


def test_the_cli_reference_follows_the_commands_own_help() -> None:
    @click.group()
    def root() -> None:
        """Root."""

    @root.command()
    @click.option("--shiny", is_flag=True, help="Polish it first.")
    def polish(shiny: bool) -> None:
        """Polish the thing."""

    text = render_cli_reference(root, prog="tool")
    assert "| [`tool polish`](#tool-polish) | Polish the thing. |" in text
    assert "Usage: tool polish [OPTIONS]" in text and "Polish it first." in text


def test_walking_the_command_tree_leaves_every_command_its_short_help_option() -> None:
    render_cli_reference(cli)
    result = CliRunner().invoke(cli, ["server", "start", "-h"], prog_name="neurant-db")
    assert result.exit_code == 0 and "Usage: neurant-db server start" in result.output
