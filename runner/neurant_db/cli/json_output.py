"""`--json` for the CLI: one option every command shares, and errors as one JSON object.

A command declared with `@json_option()` marks the click context when `--json` is
given; the root group then reports any error as
`{"error": {"code", "message", "hint", "exit_code"}}` on stdout (with the same exit
code as the text form) instead of text on stderr, and never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

JSON_KEY = "neurant_db.json"
F = TypeVar("F", bound=Callable[..., Any])


def _remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_KEY] = True
    return value


def json_option(help_text: str = "Machine-readable output (errors too, as {\"error\": {...}}).") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, callback=_remember, expose_value=True,
                        is_eager=True, help=help_text)


def wants_json(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(JSON_KEY))


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def error_code(exc: BaseException) -> str:
    """DriftDetected -> drift_detected: the error class in snake case."""
    name = type(exc).__name__
    if name == "NeurantError":
        return "error"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def emit_error(code: str, message: str, hint: str | None, exit_code: int) -> None:
    emit({"error": {"code": code, "message": message, "hint": hint, "exit_code": exit_code}})
