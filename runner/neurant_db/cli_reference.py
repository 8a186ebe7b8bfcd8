"""docs/cli.md: the command-line reference, generated from the commands' own help.

The click command tree is walked (groups and their subcommands, whatever module
defines them) and each command's `--help` text is written as click prints it, at a
fixed width so the file does not depend on the terminal. The root group is passed
in, so this module imports nothing of the CLI itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

PROG = "neurant-db"
WIDTH = 100


def context(command: click.Command, name: str, parent: click.Context | None = None) -> click.Context:
    """The context click would give command (its own context_settings, such as `-h`),
    at the fixed width."""
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    return click.Context(command, info_name=name, parent=parent, **settings)


def walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    """command and every command under it, depth first, in the order `--help` lists them."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, context(sub, name, ctx))


def command_path(ctx: click.Context) -> str:
    return ctx.command_path


def anchor(path: str) -> str:
    """The anchor GitHub gives the heading `path`."""
    return path.replace(" ", "-")


def render_cli_reference(root: click.Group, prog: str = PROG) -> str:
    top = context(root, prog)
    commands = list(walk(root, top))
    lines = [
        "# Command-line reference",
        "",
        "Generated from the commands' own `--help` by `python -m neurant_db.repo_docs`; do not edit.",
        "Exit codes, JSON output and connection settings: [operations.md](operations.md).",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for command, ctx in commands[1:]:
        path = command_path(ctx)
        short = command.get_short_help_str(limit=400).replace("|", "\\|")
        lines.append(f"| [`{path}`](#{anchor(path)}) | {short} |")
    for command, ctx in commands:
        lines += ["", f"## {command_path(ctx)}", "", "```text", command.get_help(ctx).rstrip(), "```"]
    return "\n".join(lines) + "\n"
