"""A server password kept out of connection strings while the test suites run.

`neurant-db test` and `make test` may be pointed at a password-protected server
(`DATABASE_URL=postgresql://postgres:PW@host/db`). Every URL the harness derives from
it (throwaway databases, scratch databases, fixtures) is printed somewhere sooner or
later: in an assertion, a traceback's arguments, a subprocess's command line. So the
password leaves the URL at once and goes into a private libpq password file
(PGPASSFILE, mode 0600, deleted at exit) that this process and its children read:
libpq, psql, pgbench and pg_dump find it there, and no string the tests handle holds it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_written: list[Path] = []  # the passfiles this process wrote, newest last


def _field(value: object) -> str:
    """One field of a .pgpass line (':' and '\\' escaped); '*' when unknown or a socket dir."""
    text = str(value or "")
    if not text or text.startswith("/"):
        return "*"
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _existing_lines() -> list[str]:
    """The passfile libpq would read now, so that other servers keep their passwords."""
    current = Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass")
    try:
        return current.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


def password_out_of_url(url: str) -> tuple[str, str | None]:
    """`url` without its password (as a keyword DSN), and the password, which is now in a
    private PGPASSFILE of this process. A URL without a password comes back unchanged."""
    if not url.strip():
        return url, None
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    if not password:
        return url, None
    folder = Path(tempfile.mkdtemp(prefix="neurant-pgpass-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "pgpass"
    host = params.get("host") or os.environ.get("PGHOST")
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    user = params.get("user") or os.environ.get("PGUSER")
    secret = str(password).replace("\\", "\\\\").replace(":", "\\:")
    line = f"{_field(host)}:{_field(port)}:*:{_field(user)}:{secret}"
    path.touch(mode=0o600)
    path.write_text("\n".join([line, *_existing_lines()]) + "\n", encoding="utf-8")
    os.environ["PGPASSFILE"] = str(path)
    _written.append(path)
    return _without_password(url, params), str(password)


def _without_password(url: str, params: Mapping[str, object]) -> str:
    """`url` in its own form (a URI stays a URI) with no password in it."""
    if "://" not in url.split("?", 1)[0]:
        return make_conninfo("", **{k: str(v) for k, v in params.items()})
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = userinfo.split(":", 1)[0] + "@" + hosts
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def written_passfile() -> Path | None:
    """The passfile `password_out_of_url` wrote in this process (None: none): it names no
    server, so a test that clears the PG* variables keeps it to reach the test server."""
    return _written[-1] if _written else None
