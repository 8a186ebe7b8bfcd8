"""Errors the runner reports to a person: one clear message, no traceback."""

from __future__ import annotations


class NeurantError(Exception):
    """Base of every error the CLI prints as a one-line message and exits non-zero on."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class SettingsError(NeurantError):
    """A setting (config file or CLI option) is invalid."""

    exit_code = 2


class BadArgument(NeurantError):
    """A command-line argument names something that does not exist or is unsafe."""

    exit_code = 2


class MigrationSourceError(NeurantError):
    """The SQL files themselves are inconsistent (missing rollback, duplicate version...)."""

    exit_code = 2


class ConnectionFailed(NeurantError):
    """The database could not be reached or the URL is malformed."""

    exit_code = 3


class LockHeld(NeurantError):
    """Another run holds the migration lock."""

    exit_code = 4


class DriftDetected(NeurantError):
    """An applied migration's rendered text changed since it was applied."""

    exit_code = 5


class MigrationFailed(NeurantError):
    """A migration raised an SQL error; it was rolled back as a whole."""

    exit_code = 6


class PgTapUnavailable(NeurantError):
    """pgTAP is not installed on the server and cannot be installed automatically."""

    exit_code = 7


class MissingExtra(NeurantError):
    """A command needs an optional part of neurant-db that is not installed (an extra)."""

    exit_code = 2


def not_utf8(label: object, exc: UnicodeDecodeError) -> str:
    """The one line for a text file that is not UTF-8 (config, migration, any SQL file)."""
    return (f"{label}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8")
