"""Database URLs and connections: one place that turns a URL into a live connection
or a clear error (bad scheme, unreachable server, wrong credentials)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg

from .errors import ConnectionFailed

ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
APPLICATION_NAME = "neurant-db"


@dataclass(frozen=True)
class DatabaseTarget:
    """A validated database URL and whether it is the local embedded server."""

    url: str  # libpq form: postgresql://...
    is_local: bool = False

    @property
    def yoyo_uri(self) -> str:
        """yoyo wants the psycopg 3 scheme (plain postgresql:// would load psycopg2)."""
        return "postgresql+psycopg" + self.url[len("postgresql") :]

    @property
    def redacted(self) -> str:
        return redact(self.url)

    def connect(self, *, autocommit: bool = True, purpose: str = "") -> psycopg.Connection:
        return connect(self.url, autocommit=autocommit, purpose=purpose)


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def normalize_url(url: str) -> str:
    """Return the URL in libpq form, or raise ConnectionFailed for an unusable one."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ACCEPTED_SCHEMES:
        raise ConnectionFailed(
            f"unsupported database URL {redact(url)!r}",
            hint="use postgresql://user:password@host:5432/dbname",
        )
    if not parts.path.strip("/"):
        raise ConnectionFailed(f"database URL {redact(url)!r} names no database")
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_database(url: str, database: str) -> str:
    """The same server URL naming another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def resolve_target(database_url: str | None) -> DatabaseTarget:
    """--database-url, else DATABASE_URL, else the local embedded server (started on demand)."""
    url = database_url or os.environ.get("DATABASE_URL")
    if url:
        return DatabaseTarget(normalize_url(url))
    from .server import start_local

    return DatabaseTarget(start_local().url(), is_local=True)


def connect(url: str, *, autocommit: bool = True, purpose: str = "") -> psycopg.Connection:
    app = APPLICATION_NAME + (f" {purpose}" if purpose else "")
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name=app, connect_timeout=10)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ConnectionFailed(f"cannot connect to {redact(url)}: {first}") from None
    except psycopg.ProgrammingError as exc:
        raise ConnectionFailed(f"invalid database URL {redact(url)}: {exc}") from None
