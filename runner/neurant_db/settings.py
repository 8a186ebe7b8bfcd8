"""Render settings: read from neurant-db.toml and CLI options, validated before use.

No value reaches SQL unless it passed the checks here: the template context only
ever holds a known profile name, a bounded integer and a plain identifier.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import SettingsError, not_utf8

# vanilla: plain PostgreSQL (the package creates the roles and the auth schema);
# supabase: the platform provides them; citus: plain PostgreSQL surface like vanilla,
# rendered in the shapes Citus accepts (docs/scale-out.md).
PROFILES = ("vanilla", "supabase", "citus")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CONFIG_FILE = "neurant-db.toml"


@dataclass(frozen=True)
class Settings:
    """Everything a migration template may depend on."""

    profile: str = "vanilla"
    embedding_dimensions: int = 1536
    vector_schema: str = "extensions"
    # How long one DDL statement may wait for a table lock before the migration aborts.
    statement_lock_timeout_ms: int = 10_000
    # How long one statement of a migration or rollback may run before it aborts (0: no limit).
    statement_timeout_ms: int = 900_000

    def validate(self) -> Settings:
        if self.profile not in PROFILES:
            raise SettingsError(
                f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}",
                hint="set profile = \"supabase\" when the target is a Supabase project, \"citus\" for a Citus cluster",
            )
        dims = self.embedding_dimensions
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 16000:
            raise SettingsError(
                f"embedding_dimensions must be an integer from 1 to 16000, not {dims!r}",
                hint="use the output size of your embedding model, e.g. 1536",
            )
        if not isinstance(self.vector_schema, str) or not IDENTIFIER.match(self.vector_schema):
            raise SettingsError(
                f"vector_schema must be a lower-case SQL identifier, not {self.vector_schema!r}"
            )
        timeout = self.statement_lock_timeout_ms
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout <= 3_600_000:
            raise SettingsError(
                f"statement_lock_timeout_ms must be 0..3600000, not {timeout!r}"
            )
        timeout = self.statement_timeout_ms
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout <= 86_400_000:
            raise SettingsError(
                f"statement_timeout_ms must be 0..86400000, not {timeout!r}",
                hint="15 minutes (900000) by default; 0 disables the limit",
            )
        return self

    def with_statement_timeout(self, seconds: float | None) -> Settings:
        """These settings with the --statement-timeout option applied (None: not given)."""
        if seconds is None:
            return self
        return replace(self, statement_timeout_ms=round(seconds * 1000)).validate()

    def template_context(self) -> dict[str, Any]:
        return asdict(self)


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the config file (if any), then CLI overrides (None means not given)."""
    values: dict[str, Any] = {}
    path = config_path or Path.cwd() / CONFIG_FILE
    if config_path is not None and not path.is_file():
        raise SettingsError(f"config file not found: {path}")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: invalid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise SettingsError(not_utf8(path, exc)) from None
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read the config file: {exc.strerror}") from None
        section = data.get("neurant-db", data)
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise SettingsError(
                f"{path}: unknown setting(s): {', '.join(unknown)}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        values.update(section)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values).validate()
