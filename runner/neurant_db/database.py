"""Database connections: one place that turns what names a server (a URL, a libpq
keyword DSN, the PG* environment, a pg_service.conf service, .pgpass) into the one
object every command talks to (`DatabaseTarget`: where it came from, how to show it,
how to connect), a live connection or a clear error (bad scheme, unreachable server, wrong credentials),
never printing a password (`redact`, `scrub`), naming every session it opens
(application_name), and refusing a transaction pooler where a command needs a
server session of its own (`require_own_session`)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import server
from .errors import ConnectionFailed

ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
APPLICATION_NAME = "neurant-db"
# libpq variables that name a server: with one of them set, libpq is asked (no embedded server).
SERVER_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGSERVICE")
CONNECT_TIMEOUT_S = 10
SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)://")
# Where a password sits in a connection string: the value of a `password=` field (a keyword
# DSN, or a URI's query; quoted, unterminated or bare) and the `user:PASSWORD@` of a URI.
# `scrub` masks these fields, never other text that happens to contain the same letters.
PASSWORD_FIELDS = (re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&#]+)", re.I),
                   re.compile(r"(://[^/@:?#\s]*:)([^@\s]*)(?=@)"))
# A password this long is also masked where it stands alone as a word (an echoed value);
# a shorter one is too likely to be an ordinary word ("on", "fail") to be masked there,
# and masking it there would both garble the message and show where it occurs.
WORD_MASK_MIN_LENGTH = 8
POOLER_HINT = (
    "connect {command} to the server directly (its own port, usually 5432; not a pooler's "
    "port such as Supabase's 6543) or through a pooler in session mode (PgBouncer pool_mode = "
    "session); status, doctor and the services work through a transaction pooler"
)


def application_name(purpose: str = "") -> str:
    """What pg_stat_activity shows for a session the runner opened (63 bytes at most)."""
    return (APPLICATION_NAME + (f" {purpose}" if purpose else ""))[:63]


class Source(StrEnum):
    """Where a target's connection string came from."""

    OPTION = "--database-url"
    ENVIRONMENT = "DATABASE_URL"
    LIBPQ = "the PG* environment"
    LOCAL_SERVER = "the local embedded server"
    THROWAWAY_SERVER = "a throwaway embedded server"
    THROWAWAY_DATABASE = "a throwaway database"
    GIVEN = "the caller"  # a library call with a connection string of its own


@dataclass(frozen=True)
class DatabaseTarget:
    """The database a command talks to: a validated libpq connection string and where it
    came from; shown only redacted (`redacted`, `scrub`), reached through `connect`.

    `url` is a postgresql:// URI, a keyword DSN (`host=... dbname=...`), or "" when the
    PG* variables (and their service file and .pgpass) name the server: libpq itself
    resolves them on every connection, the runner's and yoyo's alike."""

    url: str
    source: Source = Source.GIVEN
    notice: str | None = None  # one line for the person: why the embedded server is used

    @property
    def is_local(self) -> bool:
        """An embedded server of this machine (the kept one or a throwaway one)."""
        return self.source in (Source.LOCAL_SERVER, Source.THROWAWAY_SERVER)

    def with_database(self, database: str, source: Source | None = None) -> DatabaseTarget:
        """Another database of the same server, reached the same way."""
        return replace(self, url=with_database(self.url, database), source=source or self.source, notice=None)

    def scrub(self, text: str) -> str:
        """`text` with every password of this target masked."""
        return scrub(text, self.url)

    def yoyo_uri(self, purpose: str, **args: str) -> str:
        """The same connection for yoyo, which wants the psycopg 3 scheme and passes
        every query argument to psycopg.connect: built from the parsed conninfo (no
        netloc, every parameter an argument), so both of yoyo's sessions (its bookkeeping
        one and the one per migration) get exactly our parameters and application_name."""
        params = conninfo_to_dict(self.url)
        params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
        params["application_name"] = application_name(purpose)
        params.update(args)
        return "postgresql+psycopg://?" + urlencode({k: str(v) for k, v in params.items()})

    @property
    def redacted(self) -> str:
        return redact(self.url)

    def connect(self, *, autocommit: bool = True, purpose: str = "") -> psycopg.Connection:
        return connect(self.url, autocommit=autocommit, purpose=purpose)


def _password(url: str) -> str | None:
    """The password `url` (or PGPASSWORD) carries, when libpq can parse `url`."""
    try:
        password = conninfo_to_dict(_libpq_form(url)).get("password") if url.strip() else None
    except psycopg.Error:
        password = None
    return str(password) if password else os.environ.get("PGPASSWORD") or None


def scrub(text: str, url: str = "") -> str:
    """`text` (an error message, a line of output) with every password field masked: the
    value of `password=` and a URI's `user:PASSWORD@`. The password of `url` (or
    PGPASSWORD) is also masked where it stands alone as a word, if it is at least
    WORD_MASK_MIN_LENGTH characters long; other text is never touched, so "Connection
    refused" stays readable whatever the password is."""
    for pattern in PASSWORD_FIELDS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    password = _password(url)
    if password and len(password) >= WORD_MASK_MIN_LENGTH:
        text = re.sub(rf"(?<![\w-]){re.escape(password)}(?![\w-])", "***", text)
    return text


def redact(url: str) -> str:
    """`url` as it may be printed: the server, port, database and user, never a password.
    A URI or keyword DSN becomes a keyword DSN (psycopg's parser, the one libpq uses);
    "" describes the PG* environment; an unparsable string is not echoed at all."""
    if not url.strip():
        shown = {k: os.environ[v] for k, v in (("service", "PGSERVICE"), ("host", "PGHOST"),
                 ("hostaddr", "PGHOSTADDR"), ("port", "PGPORT"), ("dbname", "PGDATABASE"),
                 ("user", "PGUSER")) if os.environ.get(v)}
        return "the server of the PG* environment" + (f" ({make_conninfo(**shown)})" if shown else "")
    scheme = SCHEME.match(url)
    if scheme and scheme.group(1) not in ACCEPTED_SCHEMES:
        return f"a {scheme.group(1)}:// URL"
    try:
        params = conninfo_to_dict(_libpq_form(url))
    except psycopg.Error:
        return "an unparsable connection string"
    if "password" in params:
        params["password"] = "***"
    return scrub(make_conninfo("", **params), url)


def _libpq_form(url: str) -> str:
    scheme = SCHEME.match(url)
    if scheme and scheme.group(1) == "postgresql+psycopg":
        return "postgresql://" + url[scheme.end():]
    return url.strip()


def normalize_url(url: str) -> str:
    """Return the connection string in a form libpq reads (a URI or a keyword DSN), or
    raise ConnectionFailed for an unusable one."""
    scheme = SCHEME.match(url)
    if scheme and scheme.group(1) not in ACCEPTED_SCHEMES:
        raise ConnectionFailed(
            f"unsupported database URL scheme {scheme.group(1)!r}",
            hint="use postgresql://user@host:5432/dbname, a keyword DSN (host=... dbname=...) "
            "or the PG* variables",
        )
    text = _libpq_form(url)
    try:
        conninfo_to_dict(text)
    except psycopg.Error as exc:
        raise ConnectionFailed(f"invalid database URL: {scrub(_first_line(exc), url)}",
                               hint="see libpq's connection strings: a URI or keyword=value pairs") from None
    return text


def with_database(url: str, database: str) -> str:
    """The same server's connection string naming another database, in the same form
    (a URI stays a URI: only its path changes; anything else gets dbname=)."""
    if SCHEME.match(url) and "dbname" not in _query_keys(url):
        return urlunsplit(urlsplit(url)._replace(path="/" + quote(database, safe="")))
    return make_conninfo(url, dbname=database)


def _query_keys(url: str) -> set[str]:
    return {k for k, _ in parse_qsl(urlsplit(url).query)}


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or os.environ.get("PGDATABASE") or "")


def server_named_by_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """The PG* variables that name a server (libpq reads them; so do we)."""
    env = os.environ if environ is None else environ
    return [name for name in SERVER_VARIABLES if env.get(name)]


def named_target(database_url: str | None = None, source: Source = Source.OPTION) -> DatabaseTarget | None:
    """The server `database_url` (which came from `source`) names, else DATABASE_URL, else
    the PG* variables (a host or a service); None when nothing names one."""
    if database_url:
        return DatabaseTarget(normalize_url(database_url), source)
    from_environment = os.environ.get("DATABASE_URL")
    if from_environment:
        return DatabaseTarget(normalize_url(from_environment), Source.ENVIRONMENT)
    if server_named_by_environment():
        return DatabaseTarget("", Source.LIBPQ)
    return None


def local_target() -> DatabaseTarget:
    """The local embedded server (started on demand), with the line that says so."""
    local = server.start_local()  # looked up at call time: a test puts its own server here
    notice = (f"using the local embedded PostgreSQL ({local.pgdata}): no --database-url, "
              f"DATABASE_URL, {', '.join(SERVER_VARIABLES)} names a server")
    return DatabaseTarget(local.url(), Source.LOCAL_SERVER, notice)


def resolve_target(database_url: str | None = None, source: Source = Source.OPTION) -> DatabaseTarget:
    """What names a server (`named_target`), else the local embedded server."""
    return named_target(database_url, source) or local_target()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def connect(url: str, *, autocommit: bool = True, purpose: str = "") -> psycopg.Connection:
    try:
        timeout = None if "connect_timeout" in conninfo_to_dict(url) else CONNECT_TIMEOUT_S
        return psycopg.connect(url, autocommit=autocommit, application_name=application_name(purpose),
                               connect_timeout=timeout)
    except psycopg.OperationalError as exc:
        raise ConnectionFailed(f"cannot connect to {redact(url)}: {scrub(_first_line(exc), url)}") from None
    except psycopg.ProgrammingError as exc:
        raise ConnectionFailed(f"invalid database URL {redact(url)}: {scrub(_first_line(exc), url)}") from None


# --- transaction poolers ----------------------------------------------------------------------

def _pid_of_another_client(url: str, wait_s: float) -> int | None:
    """The server pid a second client of the same connection string gets, or None when
    it gets none within wait_s (a session pooler whose pool this run fills)."""
    got: list[int] = []

    def probe() -> None:
        try:
            with connect(url, purpose="pooler-probe") as other:
                row = other.execute("select pg_backend_pid()").fetchone()
                if row:
                    got.append(int(row[0]))
        except Exception:  # a failed probe only means "no answer"
            pass

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(wait_s)
    return got[0] if got else None


def require_own_session(conn: psycopg.Connection, url: str, command: str, *,
                        wait_s: float = 3.0) -> None:
    """Refuse `conn` unless its server session is its own until it closes.

    migrate/rollback hold their lock in an open transaction on one session and run
    DDL on others; jobs CALL procedures that COMMIT. Through a transaction (or
    statement) pooler each transaction may run on another server session, shared with
    other clients. A pooler shows itself by a backend key that is not the server
    pid; it pools by transaction when the server session this client just used is
    handed to another client, or this client comes back on another one."""
    row = conn.execute("select pg_backend_pid()").fetchone()
    first = int(row[0]) if row else 0
    if first == conn.info.backend_pid:
        return  # the server itself answered the startup: no pooler in between
    other = _pid_of_another_client(url, wait_s)
    row = conn.execute("select pg_backend_pid()").fetchone()
    again = int(row[0]) if row else 0
    if other == first or again != first:
        reason = (f"server session {first} went to another client between two transactions"
                  if other == first else
                  f"this client's transactions ran on server sessions {first} and {again}")
        raise ConnectionFailed(
            f"refusing to run {command} through a transaction pooler ({redact(url)}): {reason}; "
            f"{command} needs a server session of its own for the whole run",
            hint=POOLER_HINT.format(command=command),
        )
