"""Pooled sessions: requests of different tenants and roles share one server connection.

A transaction pooler (PgBouncer/Supavisor in transaction mode) or a driver pool hands the
same server session to one request after another. The login is shaped like PostgREST's
`authenticator` (LOGIN NOINHERIT, member of anon, authenticated and service_role), and
every request runs the exact `pooled-request` sequence of docs/services.md. A client that
leaves a session-level legacy `request.jwt.claim.sub` behind must not decide who a later
request is (profile vanilla), and the documented pooler reset (`pooler-reset`) must clear
what a client left on the session (what profile supabase depends on).

Proves rule: pooled-session-identity (docs/rules.md).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from neurant_db.testdb import TestDatabase, test_settings

from .bouncer import run_pgbouncer, wait_for
from .test_service_guide import (
    COMPANY_A,
    COMPANY_B,
    OWNER_A_AUTH,
    OWNER_B_AUTH,
    bind,
    claims,
    guide_text,
    migrated_with_fixtures,
    sql_block,
    statements,
)

SERVICE_CLAIMS = json.dumps({"role": "service_role"})
ANON_CLAIMS = json.dumps({"role": "anon"})


@dataclass
class Pool:
    """A migrated scratch database with fixtures and one authenticator-like login."""

    admin_url: str
    login: str
    password: str

    def connect(self) -> psycopg.Connection[Any]:
        parts = urlsplit(self.admin_url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{quote(self.login)}:{quote(self.password)}@{host}"
        return psycopg.connect(urlunsplit(parts._replace(netloc=netloc)), autocommit=True)


@pytest.fixture(scope="module")
def pool(neurant_server: TestDatabase) -> Iterator[Pool]:
    login, password = f"neurant_api_{secrets.token_hex(3)}", secrets.token_hex(12)
    with migrated_with_fixtures(neurant_server.url) as (url, _settings):
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'create role "{login}" login noinherit password \'{password}\'')
                conn.execute(f'grant anon, authenticated, service_role to "{login}"')
                # The schema revokes TEMPORARY from PUBLIC; the reset must still clear temp objects
                # where a login has it (a database created before the revoke, or granted by hand).
                dbname = conn.execute("select current_database()").fetchone()[0]  # type: ignore[index]
                conn.execute(f'grant temporary on database "{dbname}" to "{login}"')
            yield Pool(url, login, password)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'drop owned by "{login}"')
                conn.execute(f'drop role if exists "{login}"')


def request(conn: psycopg.Connection[Any], role: str, jwt_claims: str,
            probes: Sequence[str] = ()) -> list[list[tuple[Any, ...]] | str]:
    """One request exactly as docs/services.md `pooled-request` runs it, with the
    request's own statements (`probes`) before its final commit. Returns the rows of the
    sequence's own query (auth.uid(), auth.role()) and of each probe; a probe that fails
    yields "error <sqlstate>" and the request ends with rollback, as a pool would."""
    stmts = statements(sql_block("pooled-request"))
    assert (stmts[0].lower(), stmts[-1].lower()) == ("begin", "commit"), "the guide's request is one transaction"
    out: list[list[tuple[Any, ...]] | str] = []
    params = {"role": role, "claims": jwt_claims}
    for stmt in stmts[:-1]:
        cur = conn.execute(*bind(stmt, params))
        if cur.description is not None and not stmt.startswith("select set_config("):
            out.append([tuple(str(v) if isinstance(v, uuid.UUID) else v for v in r) for r in cur.fetchall()])
    for probe in probes:
        try:
            cur = conn.execute(probe)
        except psycopg.Error as exc:
            out.append(f"error {exc.sqlstate}")
            conn.execute("rollback")
            return out
        out.append(cur.fetchall() if cur.description is not None else [])
    conn.execute(stmts[-1])
    return out


def ids(rows: list[tuple[Any, ...]] | str) -> list[str]:
    assert not isinstance(rows, str), rows
    return sorted(str(r[0]) for r in rows)


def test_interleaved_requests_of_two_tenants_on_one_connection_each_see_only_their_own(pool: Pool) -> None:
    if test_settings().profile == "supabase":
        pytest.skip("profile supabase: Supabase's auth.uid() prefers a stale legacy sub (the next test proves it)")
    with pool.connect() as conn:
        # request 1: company A's owner; the client also leaves a session-level legacy sub behind
        who, stale, companies = request(conn, "authenticated", claims(OWNER_A_AUTH, "owner.a@example.com"), [
            f"select set_config('request.jwt.claim.sub', '{OWNER_A_AUTH}', false)",
            "select id from public.companies"])
        assert who == [(OWNER_A_AUTH, "authenticated")] and stale == [(OWNER_A_AUTH,)]
        assert ids(companies) == [COMPANY_A]

        # request 2: a backend job as service_role, no user
        who, member = request(conn, "service_role", SERVICE_CLAIMS, ["select private.get_user_company_id()"])
        assert who == [(None, "service_role")], "the stale legacy sub made the service_role request a member"
        assert member == [(None,)]

        # request 3: company B's owner with correct local claims
        who, companies, chatbots = request(conn, "authenticated", claims(OWNER_B_AUTH, "owner.b@example.com"), [
            "select id from public.companies",
            "select distinct company_id from public.chatbots"])
        assert who == [(OWNER_B_AUTH, "authenticated")], \
            "B's request ran as the user whose legacy sub was left on the session"
        assert ids(companies) == [COMPANY_B]
        assert ids(chatbots) == [COMPANY_B]

        # request 4: anon sees nothing and is nobody
        who, companies = request(conn, "anon", ANON_CLAIMS, ["select id from public.companies"])
        assert who == [(None, "anon")]
        assert companies == "error 42501"

        # the stale legacy value really was on the session the whole time
        row = conn.execute("select current_user, current_setting('request.jwt.claim.sub', true),"
                           " current_setting('request.jwt.claims', true)").fetchone()
        assert row == (pool.login, OWNER_A_AUTH, "")


def test_on_supabase_a_stale_legacy_sub_overrides_later_requests_so_the_reset_is_mandatory(pool: Pool) -> None:
    """docs/services.md, "What a missing reset costs": on profile supabase, auth.uid() is the
    platform's own, which prefers `request.jwt.claim.sub`; a value left on the session makes a
    later service_role request company A's owner. Only the pooler reset prevents it."""
    if test_settings().profile != "supabase":
        pytest.skip("profile supabase only: on vanilla the request's claims win (the test above)")
    with pool.connect() as conn:
        request(conn, "authenticated", claims(OWNER_A_AUTH, "owner.a@example.com"), [
            f"select set_config('request.jwt.claim.sub', '{OWNER_A_AUTH}', false)"])
        who, member = request(conn, "service_role", SERVICE_CLAIMS, ["select private.get_user_company_id()"])
        assert who == [(OWNER_A_AUTH, "service_role")] and ids(member) == [COMPANY_A]
        for stmt in statements(sql_block("pooler-reset")):
            conn.execute(stmt)
        who, member = request(conn, "service_role", SERVICE_CLAIMS, ["select private.get_user_company_id()"])
        assert who == [(None, "service_role")] and member == [(None,)]


def test_the_documented_pooler_reset_clears_what_a_client_left_on_the_session(pool: Pool) -> None:
    with pool.connect() as conn:
        conn.execute("select set_config('request.jwt.claims', %s, false)",
                     (claims(OWNER_A_AUTH, "owner.a@example.com"),))
        conn.execute(f"select set_config('request.jwt.claim.sub', '{OWNER_A_AUTH}', false)")
        conn.execute("create temp table left_behind (x int)")  # as the login: authenticated has no TEMPORARY
        conn.execute("set role authenticated")
        assert conn.execute("select auth.uid()::text").fetchone() == (OWNER_A_AUTH,)
        for stmt in statements(sql_block("pooler-reset")):
            conn.execute(stmt)
        row = conn.execute("select current_user, coalesce(current_setting('request.jwt.claims', true), ''),"
                           " coalesce(current_setting('request.jwt.claim.sub', true), ''),"
                           " to_regclass('pg_temp.left_behind')").fetchone()
        assert row == (pool.login, "", "", None)


def test_on_supabase_a_stale_legacy_sub_wins_until_the_pooler_resets(pool: Pool) -> None:
    """Profile supabase keeps the platform's auth.uid(), which reads the legacy setting
    first; the same shape is built here to show why the pooler reset is mandatory there."""
    with psycopg.connect(pool.admin_url, autocommit=True) as conn:
        conn.execute("create schema if not exists pooled_probe")
        conn.execute("""
            create or replace function pooled_probe.legacy_first_uid() returns uuid language sql stable as $$
              select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                              (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
            $$""")
        conn.execute("grant usage on schema pooled_probe to authenticated")
    try:
        with pool.connect() as conn:
            conn.execute(f"select set_config('request.jwt.claim.sub', '{OWNER_A_AUTH}', false)")
            b_claims = claims(OWNER_B_AUTH, "owner.b@example.com")
            _, rows = request(conn, "authenticated", b_claims, ["select pooled_probe.legacy_first_uid()::text"])
            assert rows == [(OWNER_A_AUTH,)], "with a legacy-first auth.uid() the stale sub overrides B's claims"
            for stmt in statements(sql_block("pooler-reset")):
                conn.execute(stmt)
            _, rows = request(conn, "authenticated", b_claims, ["select pooled_probe.legacy_first_uid()::text"])
            assert rows == [(OWNER_B_AUTH,)]
    finally:
        with psycopg.connect(pool.admin_url, autocommit=True) as conn:
            conn.execute("drop schema pooled_probe cascade")


# ---------------------------------------------------------------------------
# The same through a real PgBouncer (optional: skipped when it cannot be had)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bouncer(pool: Pool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PgBouncer in transaction mode with the reset of docs/services.md and ONE server
    connection, in front of the pool database; yields a client conninfo for it."""
    server = conninfo_to_dict(pool.admin_url)
    ini_block = re.search(r"```ini\n(?P<body>.*?)```", guide_text(), re.S)
    assert ini_block, "docs/services.md shows no PgBouncer ini block"
    body = ini_block["body"].strip()
    assert body.startswith("[pgbouncer]\n"), "the guide's ini block is the [pgbouncer] section"
    target = (f"host={server.get('host', 'localhost')} port={server.get('port', 5432)} dbname={server['dbname']} "
              f"user={pool.login} password={pool.password}")
    with run_pgbouncer(tmp_path_factory.mktemp("pgbouncer"), pool.admin_url, f"pooled = {target}",
                       body[len("[pgbouncer]\n"):] + "\nauth_type = any\n"
                       "default_pool_size = 1\nmax_client_conn = 10\n") as port:
        url = f"host=127.0.0.1 port={port} dbname=pooled user=anyone"
        wait_for(url)
        yield url


def test_through_pgbouncer_in_transaction_mode_the_documented_reset_runs_after_every_transaction(
        pool: Pool, bouncer: str) -> None:
    with psycopg.connect(bouncer, autocommit=True, prepare_threshold=None) as first, \
            psycopg.connect(bouncer, autocommit=True, prepare_threshold=None) as second:
        # client 1, company A's owner, leaves session-level claims, a legacy sub and a temp table behind
        first.execute("begin")
        first.execute("create temp table left_behind (x int)")  # as the login: authenticated has no TEMPORARY
        first.execute("select set_config('role', 'authenticated', false)")
        first.execute("select set_config('request.jwt.claims', %s, false)",
                      (claims(OWNER_A_AUTH, "owner.a@example.com"),))
        first.execute(f"select set_config('request.jwt.claim.sub', '{OWNER_A_AUTH}', false)")
        row = first.execute("select pg_backend_pid()").fetchone()
        first.execute("commit")
        # client 2 gets the same server connection: nothing of client 1 is left on it
        with second.transaction():
            after = second.execute(
                "select pg_backend_pid(), current_user, coalesce(current_setting('request.jwt.claims', true), ''),"
                " coalesce(current_setting('request.jwt.claim.sub', true), ''),"
                " to_regclass('pg_temp.left_behind') is null").fetchone()
        assert row is not None and after is not None
        assert after[0] == row[0], "the pool has one server connection: both clients must have used it"
        assert after[1:] == (pool.login, "", "", True), "client 1's session state reached client 2"
        # and a request of company B's owner on it, in the guide's sequence, sees only B
        who, companies = request(second, "authenticated", claims(OWNER_B_AUTH, "owner.b@example.com"),
                                 ["select id from public.companies"])
        assert who == [(OWNER_B_AUTH, "authenticated")]
        assert ids(companies) == [COMPANY_B]
