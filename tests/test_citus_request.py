"""The Citus request sequence (runner/neurant_db/citus_request.py), proven on plain
PostgreSQL from the wire: libpq's protocol trace shows what the client sent, message by
message, so "each SET LOCAL is sent alone" is observed rather than assumed."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import psycopg
import pytest

from neurant_db.citus_request import citus_request, request_statements
from neurant_db.errors import BadArgument
from neurant_db.testdb import TestDatabase

QUERY = re.compile(r"\tF\t\d+\t(?:Query|Parse)\t (?:\"\" )?\"(?P<text>.*)\"")


def _sent(trace: Path) -> list[str]:
    return [m["text"] for line in trace.read_text(encoding="utf-8").splitlines() if (m := QUERY.search(line))]


def test_each_statement_of_the_request_is_sent_alone_and_auth_uid_resolves(
        neurant_db: TestDatabase, tmp_path: Path) -> None:
    sub = str(uuid.uuid4())
    trace = tmp_path / "trace.txt"
    with psycopg.connect(neurant_db.url, autocommit=True) as conn, trace.open("w") as out:
        conn.pgconn.trace(out.fileno())
        with citus_request(conn, {"sub": sub, "role": "authenticated", "note": "it's"}) as request:
            seen = request.execute(
                "select auth.uid()::text, current_user::text, current_setting('citus.propagate_set_commands'),"
                " auth.jwt() ->> 'note'").fetchone()
        conn.pgconn.untrace()
        after = conn.execute("select current_user::text, coalesce(current_setting('request.jwt.claims', true), '')"
                             ).fetchone()
    assert seen == (sub, "authenticated", "local", "it's")
    assert after == ("postgres", "")  # SET LOCAL: nothing outlives the request
    sent = _sent(trace)
    assert sent[:4] == [
        "BEGIN",
        "set local role \"authenticated\"",
        "set local citus.propagate_set_commands = 'local'",
        "set local request.jwt.claims = '{\"note\":\"it''s\",\"role\":\"authenticated\",\"sub\":\"" + sub + "\"}'",
    ]
    assert sent[-1] == "COMMIT"
    assert all(";" not in text for text in sent)  # one statement per message, never a batch


def test_a_failing_request_rolls_back_and_leaves_no_identity_behind(neurant_db: TestDatabase) -> None:
    with psycopg.connect(neurant_db.url, autocommit=True) as conn:
        claims = {"sub": str(uuid.uuid4()), "role": "authenticated"}
        with pytest.raises(psycopg.errors.InsufficientPrivilege), citus_request(conn, claims) as request:
            request.execute("select count(*) from private.job_runs")
        assert conn.execute("select current_user::text, auth.uid()").fetchone() == ("postgres", None)


def test_a_request_role_or_claim_that_could_change_the_statement_is_refused() -> None:
    with pytest.raises(BadArgument, match="plain lower-case role name"):
        request_statements({"sub": "x"}, role="authenticated; reset role")
    with pytest.raises(BadArgument, match="claim sub must be a string"):
        request_statements({"sub": 7})
