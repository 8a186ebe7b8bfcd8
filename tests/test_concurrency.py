"""Counters on companies stay exact under concurrent inserts and deletes.

N writers, each on its own connection and released together by a barrier,
insert right at a plan limit: exactly `limit` succeed, every other one fails
with SQLSTATE NA001, and the live counter on public.companies equals count(*)
of the table afterwards - also while other sessions delete at the same time.
Writers act like the dashboard (role authenticated + request.jwt.claims, so
RLS and the column grants apply) or like the backend (service_role).

Proves rule: plan-limits-race-free (docs/rules.md).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import psycopg
import pytest

from neurant_db.database import DatabaseTarget
from neurant_db.migrate import migrate
from neurant_db.render import render_all
from neurant_db.testdb import TestDatabase, test_settings

from .conftest import scratch_database

WRITERS = 10
HOLD = 0.05  # seconds each writer keeps its transaction open after writing


@pytest.fixture(scope="module")
def db(neurant_server: TestDatabase) -> Iterator[str]:
    """A migrated scratch database shared by this module (each test makes its own company)."""
    with scratch_database(neurant_server.url) as url:
        settings = test_settings()
        migrate(DatabaseTarget(url), render_all(settings), settings)
        yield url


def make_company(url: str, plan: str, **overrides: object) -> tuple[uuid.UUID, uuid.UUID]:
    """A company on `plan` with its owner (as superuser); returns (company_id, owner auth uid)."""
    company, owner_auth = uuid.uuid4(), uuid.uuid4()
    email = f"owner-{owner_auth.hex[:8]}@example.com"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, email, email_confirmed_at) values (%s, %s, now())",
                     (owner_auth, email))
        conn.execute("insert into public.companies (id, name, subscription_plan) values (%s, %s, %s)",
                     (company, f"Co {company.hex[:8]}", plan))
        conn.execute("insert into public.users (company_id, auth_user_id, email, role) values (%s, %s, %s, 'owner')",
                     (company, owner_auth, email))
        for column, value in overrides.items():
            conn.execute(f"update public.companies set {column} = %s where id = %s", (value, company))
    return company, owner_auth


def as_member(conn: psycopg.Connection, auth_uid: uuid.UUID) -> None:
    claims = json.dumps({"sub": str(auth_uid), "role": "authenticated", "aud": "authenticated"})
    conn.execute("select set_config('request.jwt.claims', %s, false)", (claims,))
    conn.execute("set role authenticated")


def as_service(conn: psycopg.Connection) -> None:
    conn.execute("""select set_config('request.jwt.claims', '{"role": "service_role"}', false)""")
    conn.execute("set role service_role")


Action = Callable[[psycopg.Connection], object]


def execute(sql: str, params: tuple[object, ...]) -> Action:
    """An action running one statement with parameters bound now (not when it runs)."""
    return lambda c: c.execute(sql, params)


def race(url: str, setup: Callable[[psycopg.Connection], None], actions: list[Action]) -> list[str]:
    """Run every action in its own thread and transaction, all released at once by a
    barrier; each transaction stays open a moment after its write so they overlap.
    Returns 'ok' or the SQLSTATE per action, in order."""
    barrier = threading.Barrier(len(actions))
    results: list[str] = ["not run"] * len(actions)

    def worker(i: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            setup(conn)
            barrier.wait(timeout=30)
            try:
                with conn.transaction():
                    actions[i](conn)
                    conn.execute("select pg_sleep(%s)", (HOLD,))
                results[i] = "ok"
            except psycopg.Error as exc:
                results[i] = exc.sqlstate or repr(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def scalar(url: str, sql: str, *params: object) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def plan_limit(url: str, plan: str, column: str) -> int:
    value = scalar(url, f"select {column} from public.subscription_plans where code = %s", plan)
    assert isinstance(value, int)
    return value


def test_parallel_chatbot_creators_at_the_limit_never_get_one_over_max_chatbots(db: str) -> None:
    company, owner = make_company(db, "starter")
    limit = plan_limit(db, "starter", "max_chatbots")
    results = race(db, lambda c: as_member(c, owner), [
        (execute(
            "insert into public.chatbots (company_id, name, system_prompt) values (%s, %s, 'p')",
            (company, f"bot {i}")))
        for i in range(WRITERS)])
    assert Counter(results) == {"ok": limit, "NA001": WRITERS - limit}
    assert scalar(db, "select count(*) from public.chatbots where company_id = %s", company) == limit
    assert scalar(db, "select current_chatbot_count from public.companies where id = %s", company) == limit


def test_parallel_document_uploads_at_the_limit_keep_document_and_storage_counters_exact(db: str) -> None:
    company, owner = make_company(db, "free")
    limit = plan_limit(db, "free", "max_documents")
    with psycopg.connect(db, autocommit=True) as conn:  # fill up to three below the limit
        for i in range(limit - 3):
            conn.execute("insert into public.documents (company_id, title, mime_type, storage_path, size_bytes)"
                         " values (%s, 'd', 'text/plain', %s, 1000)", (company, f"pre/{i}.txt"))
    results = race(db, lambda c: as_member(c, owner), [
        (execute(
            "insert into public.documents (company_id, title, mime_type, storage_path, size_bytes)"
            " values (%s, 'd', 'text/plain', %s, 2000)", (company, f"race/{i}.txt")))
        for i in range(WRITERS)])
    assert Counter(results) == {"ok": 3, "NA001": WRITERS - 3}
    assert scalar(db, "select count(*) from public.documents where company_id = %s", company) == limit
    assert scalar(db, "select current_document_count from public.companies where id = %s", company) == limit
    assert scalar(db, "select current_storage_bytes from public.companies where id = %s", company) == \
        scalar(db, "select sum(size_bytes) from public.documents where company_id = %s", company)


def test_parallel_integration_creators_at_the_limit_never_get_one_over_max_integrations(db: str) -> None:
    company, owner = make_company(db, "starter")
    limit = plan_limit(db, "starter", "max_integrations")
    results = race(db, lambda c: as_member(c, owner), [
        (execute(
            "insert into public.integrations (company_id, type, name) values (%s, 'webhook', %s)",
            (company, f"hook {i}")))
        for i in range(WRITERS)])
    assert Counter(results) == {"ok": limit, "NA001": WRITERS - limit}
    assert scalar(db, "select count(*) from public.integrations where company_id = %s", company) == limit
    assert scalar(db, "select current_integration_count from public.companies where id = %s", company) == limit


def test_parallel_invitations_never_hand_out_more_seats_than_max_users(db: str) -> None:
    company, owner = make_company(db, "starter")
    seats = plan_limit(db, "starter", "max_users") - 1  # the owner holds one seat
    results = race(db, lambda c: as_member(c, owner), [
        (execute("select * from public.create_invitation(%s, 'operador')",
                                  (f"invitee{i}@example.com",)))
        for i in range(WRITERS)])
    assert Counter(results) == {"ok": seats, "NA001": WRITERS - seats}
    pending = scalar(db, "select count(*) from public.user_invitations where company_id = %s and status = 'pending'",
                     company)
    assert pending == seats
    assert scalar(db, "select current_pending_invitation_count from public.companies where id = %s",
                  company) == pending


def test_parallel_bot_messages_never_exceed_the_monthly_message_limit(db: str) -> None:
    limit = 5
    company, conversations = _company_with_conversations(db, "free", 2, monthly_message_limit=limit)
    results = race(db, as_service, [
        (execute(
            "insert into public.messages (company_id, conversation_id, sender_type, content)"
            " values (%s, %s, 'bot', %s)",
            (company, conversations[i % 2], f"answer {i}")))
        for i in range(WRITERS + 2)])
    assert Counter(results) == {"ok": limit, "NA001": WRITERS + 2 - limit}
    bot_messages = scalar(db, "select count(*) from public.messages where company_id = %s and sender_type = 'bot'",
                          company)
    assert bot_messages == limit
    assert scalar(db, "select sum(message_count) from public.company_message_usage where company_id = %s",
                  company) == limit


def test_concurrent_inserts_and_deletes_keep_every_counter_equal_to_the_row_count(db: str) -> None:
    company, owner = make_company(db, "starter")
    max_bots = plan_limit(db, "starter", "max_chatbots")
    max_hooks = plan_limit(db, "starter", "max_integrations")
    with psycopg.connect(db, autocommit=True) as conn:  # start exactly at the limits
        bots = [conn.execute("insert into public.chatbots (company_id, name, system_prompt) values (%s, %s, 'p')"
                             " returning id", (company, f"old bot {i}")).fetchone()[0] for i in range(max_bots)]  # type: ignore[index]
        hooks = [conn.execute("insert into public.integrations (company_id, type, name) values (%s, 'webhook', %s)"
                              " returning id", (company, f"old hook {i}")).fetchone()[0] for i in range(max_hooks)]  # type: ignore[index]
        docs = [conn.execute("insert into public.documents (company_id, title, mime_type, storage_path, size_bytes)"
                             " values (%s, 'd', 'text/plain', %s, %s) returning id",
                             (company, f"old/{i}.txt", 100 * (i + 1))).fetchone()[0] for i in range(4)]  # type: ignore[index]

    def delete(table: str, row_id: object) -> Callable[[psycopg.Connection], object]:
        # members delete through public.delete_rows (no request role holds table-level DELETE)
        return lambda c: c.execute("select public.delete_rows(%s, %s::jsonb)",
                                   (f"public.{table}", json.dumps([{"id": str(row_id)}])))

    actions: list[Callable[[psycopg.Connection], object]] = []
    actions += [delete("chatbots", b) for b in bots[:2]]
    actions += [delete("integrations", h) for h in hooks[:2]]
    actions += [delete("documents", d) for d in docs]
    actions += [(execute("insert into public.chatbots (company_id, name, system_prompt)"
                                          " values (%s, %s, 'p')", (company, f"new bot {i}"))) for i in range(4)]
    actions += [(execute("insert into public.integrations (company_id, type, name)"
                                          " values (%s, 'webhook', %s)", (company, f"new hook {i}"))) for i in range(4)]
    actions += [(execute("insert into public.documents (company_id, title, mime_type, storage_path,"
                                          " size_bytes) values (%s, 'd', 'text/plain', %s, 7)",
                                          (company, f"new/{i}.txt"))) for i in range(4)]
    results = race(db, lambda c: as_member(c, owner), actions)
    assert set(results) <= {"ok", "NA001"}, results
    assert results[:8] == ["ok"] * 8, "every delete succeeds"

    counts = scalar(db, """
        select jsonb_build_object(
          'chatbots', (select count(*) from public.chatbots where company_id = c.id) = c.current_chatbot_count,
          'integrations', (select count(*) from public.integrations where company_id = c.id)
                          = c.current_integration_count,
          'documents', (select count(*) from public.documents where company_id = c.id) = c.current_document_count,
          'storage', (select coalesce(sum(size_bytes), 0) from public.documents where company_id = c.id)
                     = c.current_storage_bytes,
          'within_limits', c.current_chatbot_count <= %s and c.current_integration_count <= %s)
          from public.companies c where c.id = %s""", max_bots, max_hooks, company)
    assert counts == {"chatbots": True, "integrations": True, "documents": True, "storage": True,
                      "within_limits": True}


def test_an_invitation_token_accepted_concurrently_is_used_exactly_once(db: str) -> None:
    company, owner = make_company(db, "starter")
    with psycopg.connect(db, autocommit=True) as conn:
        as_member(conn, owner)
        token = conn.execute("select token from public.create_invitation('twin@example.com', 'operador')").fetchone()[0]  # type: ignore[index]
        conn.execute("reset role")
        # several identities share the invited email (e.g. a re-created account; on Supabase,
        # whose auth.users keeps emails unique among password logins, SSO identities)
        sso = conn.execute("select count(*) from pg_attribute where attrelid = 'auth.users'::regclass"
                           " and attname = 'is_sso_user' and not attisdropped").fetchone() == (1,)
        twins = [uuid.uuid4() for _ in range(6)]
        for twin in twins:
            conn.execute("insert into auth.users (id, email, email_confirmed_at" + (", is_sso_user" if sso else "")
                         + ") values (%s, 'twin@example.com', now()" + (", true" if sso else "") + ")", (twin,))

    def accept_as(twin: uuid.UUID) -> Action:
        def action(c: psycopg.Connection) -> object:
            as_member(c, twin)
            return c.execute("select public.accept_invitation(%s)", (token,))
        return action

    results = race(db, lambda c: None, [accept_as(twin) for twin in twins])
    assert Counter(results) == {"ok": 1, "22023": len(twins) - 1}
    assert scalar(db, "select count(*) from public.users where company_id = %s and email = 'twin@example.com'",
                  company) == 1
    assert scalar(db, "select current_user_count from public.companies where id = %s", company) == 2


def _bot_writers(url: str, company: object, conversations: list[object], writers: int,
                 per_writer: int) -> Counter[str]:
    """`writers` sessions (each its own backend, so its own usage shard) insert bot messages
    one transaction each, all at once; returns the outcomes."""
    barrier = threading.Barrier(writers)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(i: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            as_service(conn)
            barrier.wait(timeout=30)
            for j in range(per_writer):
                try:
                    conn.execute("insert into public.messages (company_id, conversation_id, sender_type, content)"
                                 " values (%s, %s, 'bot', %s)", (company, conversations[i % len(conversations)],
                                                                 f"answer {i}/{j}"))
                    got = "ok"
                except psycopg.Error as exc:
                    got = exc.sqlstate or repr(exc)
                with lock:
                    outcomes[got] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def _company_with_conversations(url: str, plan: str, n: int, **overrides: object) -> tuple[object, list[object]]:
    company, _owner = make_company(url, plan, **overrides)
    with psycopg.connect(url, autocommit=True) as conn:
        chatbot = conn.execute("insert into public.chatbots (company_id, name, system_prompt) values (%s, 'b', 'p')"
                               " returning id", (company,)).fetchone()[0]  # type: ignore[index]
        conversations = [
            conn.execute("insert into public.conversations (company_id, chatbot_id, end_user_id, channel)"
                         " values (%s, %s, %s, 'web') returning id", (company, chatbot, f"visitor {i}")).fetchone()[0]  # type: ignore[index]
            for i in range(n)]
    return company, conversations


def test_sharded_usage_counters_stop_exactly_at_the_monthly_limit(db: str) -> None:
    """Usage is counted in one row per session shard (no tenant-wide row lock); the
    allowances granted in blocks and the exact check near the limit still admit exactly
    `limit` bot messages when many sessions write at once, each far past the limit."""
    limit = 150
    company, conversations = _company_with_conversations(db, "free", 8, monthly_message_limit=limit)
    outcomes = _bot_writers(db, company, conversations, WRITERS, 25)
    assert outcomes == {"ok": limit, "NA001": WRITERS * 25 - limit}
    assert scalar(db, "select count(*) from public.messages where company_id = %s and sender_type = 'bot'",
                  company) == limit
    assert scalar(db, "select sum(message_count) from public.company_message_usage where company_id = %s",
                  company) == limit
    shards = scalar(db, "select count(*)::int from public.company_message_usage where company_id = %s", company)
    assert isinstance(shards, int) and shards >= 2  # the writers really counted in several shards
    # a lower limit takes effect at once: the allowances granted for the old one are void
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("update public.companies set monthly_message_limit = %s where id = %s", (limit - 10, company))
    assert _bot_writers(db, company, conversations, 4, 3) == {"NA001": 12}


def test_sharded_usage_counts_every_message_of_concurrent_writers_exactly(db: str) -> None:
    company, conversations = _company_with_conversations(db, "enterprise", 8)
    outcomes = _bot_writers(db, company, conversations, WRITERS, 20)
    assert outcomes == {"ok": WRITERS * 20}
    for column in ("message_count", "total_message_count"):
        assert scalar(db, f"select sum({column})::int from public.company_message_usage where company_id = %s",
                      company) == WRITERS * 20


@pytest.mark.parametrize("sender", ["end_user", "bot"])
def test_a_writer_does_not_queue_behind_a_held_usage_shard(db: str, sender: str) -> None:
    """Under read committed a message counts in any free shard row of the month: a session
    whose own shard row is held by another open transaction writes at once (lock_timeout
    would fail it otherwise), and the usage stays exact."""
    company, conversations = _company_with_conversations(db, "enterprise", 2)
    with psycopg.connect(db, autocommit=True) as holder, psycopg.connect(db, autocommit=True) as writer:
        as_service(holder)
        as_service(writer)
        for conn, conversation in ((holder, conversations[0]), (writer, conversations[1])):
            conn.execute("insert into public.messages (company_id, conversation_id, sender_type, content)"
                         " values (%s, %s, 'bot', 'opens a shard')", (company, conversation))
        writer_shard = scalar(db, "select (%s::int %% 16)::int",
                              writer.execute("select pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        with psycopg.connect(db) as blocker:  # superuser, one open transaction holding the writer's shard row
            blocker.execute("select 1 from public.company_message_usage where company_id = %s and shard = %s"
                            " for no key update", (company, writer_shard))
            writer.execute("set lock_timeout = '1s'")
            writer.execute("insert into public.messages (company_id, conversation_id, sender_type, content)"
                           " values (%s, %s, %s, 'counted elsewhere')", (company, conversations[1], sender))
            blocker.rollback()
    assert scalar(db, "select sum(total_message_count)::int from public.company_message_usage where company_id = %s",
                  company) == 3
    assert scalar(db, "select sum(message_count)::int from public.company_message_usage where company_id = %s",
                  company) == (3 if sender == "bot" else 2)


@pytest.mark.parametrize("sender", ["end_user", "bot"])
def test_a_message_delivered_twice_at_once_is_stored_and_counted_once(db: str, sender: str) -> None:
    """rule: message-redelivery-idempotent (docs/rules.md). Two sessions write the same
    message (same id, `on conflict do nothing`) at the same time, as a queue delivering it
    twice does: one row is stored, and usage, the bot turn counter, escalation and
    last_message_at count it once."""
    company, conversations = _company_with_conversations(db, "enterprise", 1)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("update public.chatbots set hitl_keywords = '{refund}' where company_id = %s", (company,))
    message = uuid.uuid4()
    results = race(db, as_service, [
        execute("insert into public.messages (company_id, id, conversation_id, sender_type, content, created_at)"
                " values (%s, %s, %s, %s, 'I want a refund', now()) on conflict do nothing",
                (company, message, conversations[0], sender))
        for _ in range(2)])
    assert results == ["ok", "ok"]
    assert scalar(db, "select count(*)::int from public.messages where company_id = %s", company) == 1
    assert scalar(db, "select sum(total_message_count)::int from public.company_message_usage where company_id = %s",
                  company) == 1
    assert scalar(db, "select sum(message_count)::int from public.company_message_usage where company_id = %s",
                  company) == (1 if sender == "bot" else 0)
    assert scalar(db, "select bot_turns_without_resolution from public.conversations where id = %s",
                  conversations[0]) == (1 if sender == "bot" else 0)
    assert scalar(db, "select count(*)::int from public.hitl_escalations where conversation_id = %s",
                  conversations[0]) == (1 if sender == "end_user" else 0)
    assert scalar(db, "select c.last_message_at = m.created_at from public.conversations c"
                  " join public.messages m on m.conversation_id = c.id where c.id = %s", conversations[0]) is True
