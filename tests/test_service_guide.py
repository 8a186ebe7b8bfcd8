"""docs/services.md is executable: its connection sequences run for real, and its RPC
and error tables cannot fall behind the schema.

The named ```sql <name>``` blocks of the guide are extracted and executed against a
migrated scratch database holding the test fixtures (tests/fixtures, committed), as
the LOGIN roles the guide's own `vanilla-login-roles` block creates (renamed with a
random suffix, dropped afterwards). The psql variables `:'name'` are bound as query
parameters from fixture identities (tests/test_postgresql15.py runs the same blocks in
psql 15, with `-v name=value`), `<...>` placeholders are filled in by the test.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from neurant_db.database import DatabaseTarget
from neurant_db.migrate import migrate
from neurant_db.render import render_all
from neurant_db.settings import Settings
from neurant_db.testdb import TestDatabase, test_settings

from .conftest import scratch_database

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "services.md"

COMPANY_A = "aaaaaaaa-0000-0000-0000-000000000000"
COMPANY_B = "bbbbbbbb-0000-0000-0000-000000000000"
OWNER_A_AUTH = "a1aaaaaa-0000-0000-0000-000000000001"
OWNER_B_AUTH = "b1bbbbbb-0000-0000-0000-000000000001"
CHATBOT_A1 = "aaaaaaaa-0000-0000-0001-000000000001"
SERVICES = ("dashboard", "bot", "ingest", "jobs")
API_ROLES = ("anon", "authenticated", "service_role")

# ---------------------------------------------------------------------------
# Reading the guide
# ---------------------------------------------------------------------------

_BLOCK = re.compile(r"^```(?P<lang>\w+)(?: (?P<name>[a-z0-9-]+))?\n(?P<body>.*?)^```", re.M | re.S)


def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def named_blocks(lang: str) -> dict[str, str]:
    return {m["name"]: m["body"] for m in _BLOCK.finditer(guide_text())
            if m["lang"] == lang and m["name"]}


def sql_block(name: str) -> str:
    blocks = named_blocks("sql")
    assert name in blocks, f"docs/services.md has no ```sql {name}``` block"
    return blocks[name]


def json_example() -> dict[str, Any]:
    bodies = [m["body"] for m in _BLOCK.finditer(guide_text()) if m["lang"] == "json"]
    assert len(bodies) == 1, "docs/services.md should show exactly one JSON claims example"
    value = json.loads(bodies[0])
    assert isinstance(value, dict)
    return value


def section(title_prefix: str) -> str:
    """The text of the `## <title_prefix>...` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title_prefix)}.*?$(?P<body>.*?)(?=^## |\Z)", guide_text(), re.M | re.S)
    assert match, f"docs/services.md has no section '## {title_prefix}'"
    return match["body"]


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """Markdown table rows whose first cell starts with `first_cell`, split into cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| " + first_cell):
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows


def normalize_signature(text: str) -> str:
    return re.sub(r",\s+", ",", text.strip().strip("`"))


def documented_rpcs() -> dict[str, tuple[str, set[str]]]:
    """signature -> (status, granted roles) from the RPC contract table."""
    out: dict[str, tuple[str, set[str]]] = {}
    for cells in table_rows(section("8. RPC contract"), "`public."):
        signature = normalize_signature(cells[0])
        assert signature not in out, f"{signature} is listed twice in the RPC contract"
        out[signature] = (cells[1], {r.strip() for r in cells[2].split(",")})
    return out


def documented_sqlstates() -> set[str]:
    codes: set[str] = set()
    for cells in table_rows(section("9. Error codes"), "`"):
        codes.update(re.findall(r"`([0-9A-Z]{5})`", cells[0]))
    return codes


# ---------------------------------------------------------------------------
# Running the guide's SQL
# ---------------------------------------------------------------------------

@dataclass
class Env:
    """The scratch database and the login roles created from the guide."""

    admin_url: str
    logins: dict[str, str]  # service -> LOGIN role name
    passwords: dict[str, str]
    dims: int

    def url_for(self, service: str) -> str:
        parts = urlsplit(self.admin_url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{quote(self.logins[service])}:{quote(self.passwords[service])}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))

    def connect(self, service: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url_for(service), autocommit=True)

    def vector(self, axis: int = 1) -> str:
        return "[" + ",".join("1" if i == axis else "0" for i in range(1, self.dims + 1)) + "]"


def statements(block: str) -> list[str]:
    out = []
    for chunk in re.split(r";[ \t]*(?:\n|\Z)", block):
        code = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if code:
            out.append(chunk.strip())
    return out


def fill(block: str, values: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        assert m[1] in values, f"the test does not know the guide placeholder <{m[1]}>"
        return values[m[1]]

    return re.sub(r"<([a-z][a-z0-9-]*)>", sub, block)


PSQL_VARIABLE = re.compile(r":'([a-z_][a-z0-9_]*)'")


def variables(block: str) -> set[str]:
    """The psql variables (`:'name'`) a guide block uses."""
    return set(PSQL_VARIABLE.findall(block))


def bind(stmt: str, params: Mapping[str, object]) -> tuple[str, dict[str, object]]:
    """A guide statement for psycopg: each psql variable `:'name'` becomes the parameter %(name)s."""
    used = variables(stmt)
    missing = sorted(used - set(params))
    assert not missing, f"no value for the guide's psql variable(s) {missing}"
    return PSQL_VARIABLE.sub(lambda m: f"%({m[1]})s", stmt.replace("%", "%%")), {n: params[n] for n in used}


def run_block(conn: psycopg.Connection[Any], block: str, params: Mapping[str, object]) -> list[list[tuple[Any, ...]]]:
    """Execute a guide block statement by statement on `conn` (autocommit: the block's
    own begin/commit delimit the transactions); `:'name'` is bound to params[name]. Returns
    the rows of every statement that returns rows (set_config calls aside), in order."""
    results = []
    for stmt in statements(block):
        query, values = bind(stmt, params)
        cur = conn.execute(query, values)
        if cur.description is not None and not stmt.startswith("select set_config("):
            results.append(cur.fetchall())
    return results


def renamed(block: str, logins: Mapping[str, str]) -> str:
    return re.sub(r"\bneurant_(dashboard|bot|ingest|jobs)\b", lambda m: logins[m[1]], block)


def dashboard(jwt_claims: str, company: str) -> dict[str, object]:
    """The values of the dashboard-session block's psql variables."""
    return {"claims": jwt_claims, "company_id": company}


def claims(auth_uid: str, email: str) -> str:
    return json.dumps({"sub": auth_uid, "role": "authenticated", "email": email, "aud": "authenticated"})


@contextmanager
def migrated_with_fixtures(server_url: str) -> Iterator[tuple[str, Settings]]:
    """A scratch database on that server, migrated, holding the committed test fixtures."""
    with scratch_database(server_url) as url:
        settings = test_settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            for path in sorted((ROOT / "tests" / "fixtures").glob("*.sql")):
                conn.execute(path.read_text(encoding="utf-8"))
        yield url, settings


@pytest.fixture(scope="module")
def env(neurant_server: TestDatabase) -> Iterator[Env]:
    """Migrated scratch database + committed fixtures + the guide's login roles."""
    suffix = secrets.token_hex(3)
    logins = {s: f"neurant_{s}_{suffix}" for s in SERVICES}
    passwords = {s: secrets.token_hex(12) for s in SERVICES}
    with migrated_with_fixtures(neurant_server.url) as (url, settings):
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                block = fill(renamed(sql_block("vanilla-login-roles"), logins),
                             {f"{s}-password": passwords[s] for s in SERVICES})
                run_block(conn, block, {})
            yield Env(url, logins, passwords, settings.embedding_dimensions)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                for login in logins.values():
                    conn.execute(f'drop role if exists "{login}"')


def ids_of(env: Env, table: str, company: str) -> set[uuid.UUID]:
    with psycopg.connect(env.admin_url) as conn:
        return {r[0] for r in conn.execute(f"select id from {table} where company_id = %s", (company,))}


def sqlstate_of(conn: psycopg.Connection[Any], sql: str) -> str | None:
    try:
        with conn.transaction():
            conn.execute(sql)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def test_every_sql_block_of_the_guide_is_named_and_executed_here() -> None:
    unnamed = [m["body"][:60] for m in _BLOCK.finditer(guide_text()) if m["lang"] == "sql" and not m["name"]]
    assert unnamed == [], "name every ```sql block of docs/services.md so this module can run it"
    assert set(named_blocks("sql")) == {
        "vanilla-login-roles", "dashboard-session", "bot-engine-session", "ingestion-worker", "jobs-session",
        "pooled-request", "pooler-reset",  # run by tests/test_pooled_sessions.py
        "member-delete",
        "session-label", "postgrest-label",  # run by tests/test_observe.py
    }, "a new ```sql <name>``` block in docs/services.md needs a test here that runs it"


# ---------------------------------------------------------------------------
# Login roles (section 2)
# ---------------------------------------------------------------------------

def test_every_service_login_is_noinherit_and_a_member_of_exactly_one_api_role(env: Env) -> None:
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        for service, login in env.logins.items():
            row = conn.execute(
                "select r.rolcanlogin, r.rolinherit, r.rolbypassrls,"
                " array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid"
                "        where m.member = r.oid order by 1)"
                " from pg_roles r where r.rolname = %s", (login,)).fetchone()
            assert row is not None, f"the guide does not create {login}"
            assert row[:3] == (True, False, False), f"{login}: login, noinherit, no bypassrls of its own"
            expected = ["authenticated"] if service == "dashboard" else ["service_role"]
            assert row[3] == expected


def test_on_pg16_and_later_the_dashboard_membership_can_set_role_but_does_not_inherit(env: Env) -> None:
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        version = conn.execute("select current_setting('server_version_num')::int").fetchone()
        if version is None or version[0] < 160000:
            pytest.skip("membership options exist from PostgreSQL 16")
        row = conn.execute(
            "select m.inherit_option, m.set_option from pg_auth_members m"
            " where m.member = %s::regrole and m.roleid = 'authenticated'::regrole",
            (env.logins["dashboard"],)).fetchone()
    assert row == (False, True)


def test_an_inherit_member_of_service_role_that_does_not_switch_sees_no_rows(env: Env) -> None:
    """Why the backend logins must really become service_role: BYPASSRLS is not inherited."""
    login = f"neurant_inherit_{secrets.token_hex(3)}"
    password = secrets.token_hex(12)
    with psycopg.connect(env.admin_url, autocommit=True) as admin:
        admin.execute(f"create role {login} login inherit password '{password}'")
        admin.execute(f"grant service_role to {login}")
        try:
            probe = Env(env.admin_url, {"probe": login}, {"probe": password}, env.dims)
            with probe.connect("probe") as conn:
                assert conn.execute("select current_user, (select count(*) from public.companies)").fetchone() == (
                    login, 0)
        finally:
            admin.execute(f"drop role {login}")


def test_the_dashboard_login_reads_nothing_before_set_role(env: Env) -> None:
    with env.connect("dashboard") as conn:
        assert conn.execute("select current_user").fetchone() == (env.logins["dashboard"],)
        assert sqlstate_of(conn, "select count(*) from public.companies") == "42501"
        assert sqlstate_of(conn, "select count(*) from public.subscription_plans") == "42501"


def test_the_dashboard_login_cannot_become_service_role(env: Env) -> None:
    with env.connect("dashboard") as conn:
        assert sqlstate_of(conn, "set role service_role") == "42501"
        assert sqlstate_of(conn, "set role postgres") == "42501"


def test_backend_logins_start_every_session_as_service_role(env: Env) -> None:
    for service in ("bot", "ingest", "jobs"):
        with env.connect(service) as conn:
            assert conn.execute("select current_user, session_user").fetchone() == ("service_role", env.logins[service])
            count = conn.execute("select count(*) from public.companies").fetchone()
            assert count is not None and count[0] >= 2, "service_role bypasses RLS"


# ---------------------------------------------------------------------------
# Dashboard (section 3)
# ---------------------------------------------------------------------------

def test_the_claims_example_is_a_fixture_member_with_sub_and_email(env: Env) -> None:
    example = json_example()
    assert {"sub", "role", "email"} <= example.keys()
    with psycopg.connect(env.admin_url) as conn:
        row = conn.execute("select u.email from public.users u where u.auth_user_id = %s and u.is_active",
                           (example["sub"],)).fetchone()
    assert row == (example["email"],)


def test_the_dashboard_session_sees_only_the_callers_company(env: Env) -> None:
    block = sql_block("dashboard-session")
    with env.connect("dashboard") as conn:
        companies, chatbots = run_block(conn, block, dashboard(json.dumps(json_example()), COMPANY_A))
        assert [str(r[0]) for r in companies] == [COMPANY_A]
        assert {r[0] for r in chatbots} == ids_of(env, "public.chatbots", COMPANY_A)
        companies, chatbots = run_block(conn, block, dashboard(json.dumps(json_example()), COMPANY_B))
        assert companies == [] and chatbots == [], "another company's rows are invisible even when asked for"
        companies, _ = run_block(conn, block, dashboard(claims(OWNER_B_AUTH, "owner.b@example.com"), COMPANY_B))
        assert [str(r[0]) for r in companies] == [COMPANY_B]


def test_the_dashboard_claims_and_role_end_with_the_transaction(env: Env) -> None:
    with env.connect("dashboard") as conn:
        run_block(conn, sql_block("dashboard-session"), dashboard(json.dumps(json_example()), COMPANY_A))
        row = conn.execute("select current_user, current_setting('request.jwt.claims', true)").fetchone()
        assert row is not None
        assert row[0] == env.logins["dashboard"] and not row[1]
        assert sqlstate_of(conn, "select count(*) from public.companies") == "42501"
        with conn.transaction():
            conn.execute("set local role authenticated")
            assert conn.execute("select auth.uid(), (select count(*) from public.companies)").fetchone() == (None, 0)


def test_a_member_deletes_through_delete_rows_and_cannot_lock_a_shared_table(env: Env) -> None:
    """The guide's delete path works for the owner; a direct DELETE and LOCK TABLE are
    refused (issue 20, item 1; proved in tests/pgtap/0010_catalog_hardening.sql)."""
    block = sql_block("member-delete").replace("commit;", "rollback;")
    owner = claims(OWNER_A_AUTH, "owner.a@example.com")
    operators = json.dumps([{"chatbot_id": "aaaaaaaa-0000-0000-0001-000000000001",
                             "user_id": "aaaaaaaa-0000-0000-0000-000000000004"}])
    chatbots = json.dumps([{"id": "aaaaaaaa-0000-0000-0001-000000000002"}])
    with env.connect("dashboard") as conn:
        assert run_block(conn, block, {"claims": owner, "assignments": operators, "chatbots": chatbots}) \
            == [[(1,)], [(1,)]]
        with conn.transaction():
            conn.execute("set local role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, true)", [owner])
            assert sqlstate_of(conn, "delete from public.chatbots") == "42501"
            assert sqlstate_of(conn, "lock table public.users in access exclusive mode") == "42501"


def test_claims_set_with_is_local_false_leak_into_the_next_transaction(env: Env) -> None:
    """Why the guide insists on is_local = true: a session-level claim survives commit."""
    leaked = sql_block("dashboard-session").replace(":'claims', true)", ":'claims', false)")
    assert leaked != sql_block("dashboard-session")
    with env.connect("dashboard") as conn:
        run_block(conn, leaked, dashboard(json.dumps(json_example()), COMPANY_A))
        with conn.transaction():
            conn.execute("set local role authenticated")
            row = conn.execute("select auth.uid()::text, (select count(*) from public.companies)").fetchone()
        assert row == (json_example()["sub"], 1), "the next request on this connection would act as the previous user"


def test_a_stale_legacy_claim_sub_does_not_override_request_jwt_claims(env: Env) -> None:
    """Profile vanilla: the current request.jwt.claims win over a session-level legacy sub."""
    if test_settings().profile == "supabase":
        pytest.skip("profile supabase: Supabase's auth.uid() prefers the legacy sub; "
                    "tests/test_pooled_sessions.py proves what that does and the reset that prevents it")
    with env.connect("dashboard") as conn:
        conn.execute("select set_config('request.jwt.claim.sub', %s, false)", (OWNER_B_AUTH,))
        companies, _ = run_block(conn, sql_block("dashboard-session"), dashboard(json.dumps(json_example()), COMPANY_A))
        assert [str(r[0]) for r in companies] == [COMPANY_A], "owner A's claims lost against the stale legacy setting"


# ---------------------------------------------------------------------------
# Bot engine, ingestion, jobs (sections 4-6)
# ---------------------------------------------------------------------------

def test_the_bot_engine_session_answers_in_the_given_company_only(env: Env) -> None:
    conversation = str(uuid.uuid4())
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        conn.execute("insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel)"
                     " values (%s, %s, %s, 'guide-test', 'whatsapp')", (COMPANY_A, conversation, CHATBOT_A1))
    with env.connect("bot") as conn:
        end_user, status, chunks, bot = run_block(conn, sql_block("bot-engine-session"), {
            "company_id": COMPANY_A, "conversation_id": conversation, "end_user_text": "What are your opening hours?",
            "embedding": env.vector(1), "bot_text": "We open at 9:00."})
        assert status == [("active", False)]
        assert len(end_user) == 1 and len(bot) == 1
        assert chunks and {c[0] for c in chunks} <= ids_of(env, "public.document_chunks", COMPANY_A)
        assert conn.execute("select current_setting('request.jwt.claims', true)").fetchone() in (("",), (None,))
    with psycopg.connect(env.admin_url) as conn:
        rows = conn.execute("select company_id::text, sender_type::text from public.messages"
                            " where conversation_id = %s order by created_at, sender_type", (conversation,)).fetchall()
    assert sorted(rows) == [(COMPANY_A, "bot"), (COMPANY_A, "end_user")]


def test_the_bot_engine_session_stays_silent_while_a_human_has_the_conversation(env: Env) -> None:
    """rule bot-silent-in-human-mode: the guide's sequence keeps the end user's message and the
    bot answer is refused with NA003."""
    conversation = str(uuid.uuid4())
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        conn.execute("insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel)"
                     " values (%s, %s, %s, 'guide-test-human', 'whatsapp')", (COMPANY_A, conversation, CHATBOT_A1))
        conn.execute("update public.conversations set status = 'waiting_human' where company_id = %s and id = %s",
                     (COMPANY_A, conversation))
    with env.connect("bot") as conn:
        with pytest.raises(psycopg.Error) as info:
            run_block(conn, sql_block("bot-engine-session"), bot_params(env, COMPANY_A, conversation))
        conn.execute("rollback")
    assert info.value.sqlstate == "NA003" and info.value.diag.message_hint
    with psycopg.connect(env.admin_url) as conn:
        rows = conn.execute("select sender_type::text from public.messages where conversation_id = %s",
                            (conversation,)).fetchall()
    assert rows == [("end_user",)]


def bot_params(env: Env, company: str, conversation: str) -> dict[str, object]:
    return {"company_id": company, "conversation_id": conversation, "end_user_text": "hi",
            "embedding": env.vector(1), "bot_text": "hello"}


def test_a_bot_engine_session_carrying_a_members_sub_is_refused_bot_messages(env: Env) -> None:
    conversation = str(uuid.uuid4())
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        conn.execute("insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel)"
                     " values (%s, %s, %s, 'guide-test-sub', 'whatsapp')", (COMPANY_A, conversation, CHATBOT_A1))
    block = sql_block("bot-engine-session").replace(
        """'{"role": "service_role"}'""", "'" + claims(OWNER_A_AUTH, "owner.a@example.com") + "'")
    assert block != sql_block("bot-engine-session")
    with env.connect("bot") as conn, pytest.raises(psycopg.Error) as info:
        run_block(conn, block, bot_params(env, COMPANY_A, conversation))
    assert info.value.sqlstate == "42501"


def test_create_chatbot_from_template_always_refuses_service_role(env: Env) -> None:
    with env.connect("bot") as conn:
        code = sqlstate_of(conn, "select public.create_chatbot_from_template('any', 'Bot from the backend')")
    assert code == "42501"


def test_match_document_chunks_without_a_company_argument_returns_nothing_for_service_role(env: Env) -> None:
    with env.connect("bot") as conn:
        row = conn.execute("select count(*) from public.match_document_chunks(%s::extensions.vector)",
                           (env.vector(1),)).fetchone()
        assert row == (0,)
        row = conn.execute("select count(*) from public.match_document_chunks_for_company(%s, %s::extensions.vector)",
                           (COMPANY_A, env.vector(1))).fetchone()
        assert row is not None and row[0] > 0


def test_the_bot_engine_cannot_write_into_a_conversation_of_another_company(env: Env) -> None:
    conversation = str(uuid.uuid4())
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        conn.execute("insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel)"
                     " values (%s, %s, %s, 'guide-test-2', 'whatsapp')", (COMPANY_A, conversation, CHATBOT_A1))
    with env.connect("bot") as conn, pytest.raises(psycopg.Error) as info:
        run_block(conn, sql_block("bot-engine-session"), bot_params(env, COMPANY_B, conversation))
    assert info.value.sqlstate == "23503"


def test_the_ingestion_worker_sequence_makes_a_document_ready_with_its_chunks(env: Env) -> None:
    document = str(uuid.uuid4())
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        conn.execute("insert into public.documents (company_id, id, title, mime_type, storage_path, size_bytes)"
                     " values (%s, %s, 'Opening hours', 'text/plain', %s, 100)",
                     (COMPANY_A, document, f"docs/{document}.txt"))
    with env.connect("ingest") as conn:
        claimed, *_ = run_block(conn, sql_block("ingestion-worker"), {
            "company_id": COMPANY_A, "document_id": document, "chunk_text": "We open at 9:00 every weekday.",
            "embedding": env.vector(2)})
        assert [str(r[0]) for r in claimed] == [document]
    with psycopg.connect(env.admin_url) as conn:
        row = conn.execute("select status::text, chunk_count, processed_at is not null from public.documents"
                           " where company_id = %s and id = %s", (COMPANY_A, document)).fetchone()
    assert row == ("ready", 1, True)


def test_a_retried_document_gets_a_fresh_processed_at(env: Env) -> None:
    document = str(uuid.uuid4())
    with psycopg.connect(env.admin_url, autocommit=True) as conn:
        conn.execute("insert into public.documents (company_id, id, title, mime_type, storage_path, size_bytes,"
                     " status, error_message, processed_at)"
                     " values (%s, %s, 'Retry me', 'text/plain', %s, 10,"
                     "         'failed', 'timeout', now() - interval '1 day')",
                     (COMPANY_A, document, f"docs/{document}.txt"))
    with env.connect("ingest") as conn:
        run_block(conn, sql_block("ingestion-worker"), {
            "company_id": COMPANY_A, "document_id": document, "chunk_text": "Second try.", "embedding": env.vector(3)})
    with psycopg.connect(env.admin_url) as conn:
        row = conn.execute("select status::text, error_message, processed_at > now() - interval '1 hour'"
                           " from public.documents where company_id = %s and id = %s", (COMPANY_A, document)).fetchone()
    assert row == ("ready", None, True)


def test_unique_violations_name_their_constraint_except_the_pending_invitation_check(env: Env) -> None:
    """The error table's rule: map 23505 by constraint name - and its documented exception."""
    with env.connect("dashboard") as conn:
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("set local role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(json_example()),))
            conn.execute("insert into public.chatbots (company_id, name, system_prompt)"
                         " select company_id, name, system_prompt from public.chatbots where id = %s", (CHATBOT_A1,))
        assert (info.value.sqlstate, info.value.diag.constraint_name) == ("23505", "chatbots_company_name_key")
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("set local role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(json_example()),))
            conn.execute("select * from public.create_invitation('invitee.a@example.com', 'operador')")
        assert (info.value.sqlstate, info.value.diag.constraint_name) == ("23505", None)


def test_the_jobs_session_runs_a_job_as_the_jobs_login(env: Env) -> None:
    with env.connect("jobs") as conn:
        run_block(conn, sql_block("jobs-session"), {})
        row = conn.execute("select status from private.job_runs"
                           " where job = 'analytics' order by id desc limit 1").fetchone()
    assert row == ("succeeded",)


def test_authenticated_cannot_run_the_jobs(env: Env) -> None:
    with env.connect("dashboard") as conn:
        conn.execute("set role authenticated")
        assert sqlstate_of(conn, sql_block("jobs-session")) == "42501"


# ---------------------------------------------------------------------------
# The RPC contract and the error table cover the schema (sections 8-9)
# ---------------------------------------------------------------------------

def catalog_grants(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """public functions executable by authenticated or service_role -> the API roles that may execute them."""
    conn.execute("set search_path = pg_catalog")
    return {
        sig: set(roles)
        for sig, roles in conn.execute(
            "select p.oid::regprocedure::text,"
            "  array(select r from unnest(%s::text[]) r where has_function_privilege(r, p.oid, 'execute'))"
            " from pg_proc p where p.pronamespace = 'public'::regnamespace"
            "  and (has_function_privilege('authenticated', p.oid, 'execute')"
            "       or has_function_privilege('service_role', p.oid, 'execute'))", (list(API_ROLES),))
    }


def test_every_public_function_executable_by_authenticated_or_service_role_is_in_the_rpc_contract(env: Env) -> None:
    with psycopg.connect(env.admin_url) as conn:
        granted = catalog_grants(conn)
    documented = documented_rpcs()
    assert sorted(set(granted) - set(documented)) == [], "undocumented RPCs: add them to docs/services.md section 8"
    assert sorted(set(documented) - set(granted)) == [], \
        "docs/services.md lists functions that do not exist (or lost their grants)"
    for sig, (status, roles) in documented.items():
        assert status in ("stable", "internal", "job"), f"{sig}: status must be stable, internal or job"
        # Section 8 is the vanilla state; on Supabase its default privileges add service_role
        # to every function (section 7), which the profile supabase run must accept.
        catalog = granted[sig] - ({"service_role"} if test_settings().profile == "supabase" else set())
        assert roles == catalog or roles == granted[sig], \
            f"{sig}: the guide says granted to {sorted(roles)}, the catalog {sorted(granted[sig])}"


def test_with_supabase_default_privileges_anon_gains_nothing_and_service_role_only_the_member_rpcs(
        neurant_server: TestDatabase) -> None:
    """Supabase grants EXECUTE on new public functions to anon/authenticated/service_role by
    default; the migrations' revokes must still leave anon with nothing beyond section 8."""
    with scratch_database(neurant_server.url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("alter default privileges in schema public"
                         " grant all on functions to anon, authenticated, service_role")
        settings = test_settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        with psycopg.connect(url) as conn:
            granted = catalog_grants(conn)
    for sig, (_, roles) in documented_rpcs().items():
        extra = granted[sig] - roles
        assert extra <= {"service_role"}, f"{sig}: default privileges leave {sorted(extra)} with EXECUTE"
        if "authenticated" in roles:
            assert "service_role" in granted[sig]


def _raised_sqlstates(settings: Settings) -> set[str]:
    codes: set[str] = set()
    for migration in render_all(settings):
        sql = migration.apply_sql
        for value in re.findall(r"errcode\s*=\s*'([^']*)'", sql, re.I):
            assert re.fullmatch(r"[0-9A-Z]{5}", value), f"{migration.id}: errcode {value!r} is not a SQLSTATE"
            codes.add(value)
        codes.update(re.findall(r"raise\s+(?:exception\s+)?sqlstate\s+'([0-9A-Z]{5})'", sql, re.I))
        if re.search(r"raise\s+(?:exception\s+)?'", sql, re.I):
            codes.add("P0001")  # a raise without errcode
    return codes


def test_every_sqlstate_raised_by_the_migrations_is_in_the_error_table() -> None:
    supabase = Settings(profile="supabase", embedding_dimensions=8)
    raised = _raised_sqlstates(test_settings()) | _raised_sqlstates(supabase)
    assert {"NA001", "42501", "22023"} <= raised, "the errcode scan found nothing: has the raise syntax changed?"
    missing = sorted(raised - documented_sqlstates())
    assert missing == [], f"SQLSTATEs raised by the schema but missing from docs/services.md section 9: {missing}"


def test_every_sqlstate_named_in_the_rpc_contract_is_in_the_error_table() -> None:
    named = set(re.findall(r"`([0-9A-Z]{5})`", section("8. RPC contract")))
    missing = sorted(named - documented_sqlstates())
    assert missing == [], f"section 8 names SQLSTATEs that section 9 does not explain: {missing}"
