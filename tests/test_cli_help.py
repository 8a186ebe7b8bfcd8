"""Every command's help has an example (sqlite-utils' habit): walk the click group
recursively and read `--help` of every command and subcommand."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under group, groups included (e.g. ('jobs',), ('jobs', 'run'))."""
    paths: list[tuple[str, ...]] = [prefix]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def example_lines(help_text: str) -> list[str]:
    """The lines of the help's `Example:` block (empty when there is none)."""
    block = re.search(r"^\s*Examples?:\s*$(?P<body>(\n[ \t]+\S.*)+)", help_text, re.MULTILINE)
    return [line.strip() for line in block["body"].splitlines() if line.strip()] if block else []


COMMANDS = command_paths(cli)


def test_the_walk_finds_nested_commands() -> None:
    assert ("migrate",) in COMMANDS
    assert ("server", "start") in COMMANDS
    assert ("jobs", "run") in COMMANDS


def test_a_help_without_example_block_is_caught() -> None:
    @click.command()
    def bare() -> None:
        """Does something.

        Example: neurant-db bare (inline, not a block)
        """

    help_text = CliRunner().invoke(bare, ["--help"]).output
    assert example_lines(help_text) == []
    assert example_lines("Usage: x\n\nExample:\n  neurant-db status\n\nOptions:\n") == ["neurant-db status"]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(("neurant-db", *p)))
def test_every_command_help_has_an_example_block_with_a_neurant_db_line(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="neurant-db", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = example_lines(result.output)
    assert lines, f"`neurant-db {' '.join(path)} --help` has no Example block:\n{result.output}"
    assert any("neurant-db " in line for line in lines), (
        f"the Example block of `neurant-db {' '.join(path)}` shows no neurant-db command: {lines}")


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(("neurant-db", *p, "-h")))
def test_dash_h_is_help_for_every_command(path: tuple[str, ...]) -> None:
    short = CliRunner().invoke(cli, [*path, "-h"], prog_name="neurant-db", catch_exceptions=False)
    assert short.exit_code == 0, short.output
    assert short.output == CliRunner().invoke(cli, [*path, "--help"], prog_name="neurant-db").output
