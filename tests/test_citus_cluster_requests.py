"""The request paths of profile citus on a real Citus cluster (tests/citus_cluster.py),
each sent the documented way (runner/neurant_db/citus_request.py, docs/services.md §11):
the failures 3-8 of issue 19."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.citus_request import citus_request
from neurant_db.cli import cli

from .citus_cluster import CitusCluster, copy_of

ARGS = ["--profile", "citus", "--embedding-dimensions", "8"]


@dataclass(frozen=True)
class Tenants:
    url: str
    owner_a: str  # auth identities
    owner_b: str
    company_a: str
    company_b: str


def request(url: str, sub: str | None, statements: Sequence[tuple[str, Sequence[Any]]],
            role: str = "authenticated") -> list[list[tuple[Any, ...]]]:
    """One request (one transaction) of the identity `sub` (None: the backend, service_role)."""
    claims = {"sub": sub, "role": role} if sub else {"role": role}
    results: list[list[tuple[Any, ...]]] = []
    with psycopg.connect(url, autocommit=True) as conn, citus_request(conn, claims, role) as r:
        for sql, params in statements:
            cur = r.execute(sql, params)
            results.append(cur.fetchall() if cur.description else [])
    return results


def one(url: str, sub: str | None, sql: str, *params: Any, role: str = "authenticated") -> Any:
    rows = request(url, sub, [(sql, params)], role)[0]
    return rows[0][0] if rows else None


def sign_up(url: str, name: str) -> str:
    sub = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, aud, role, email, email_confirmed_at, raw_user_meta_data) "
                     "values (%s, 'authenticated', 'authenticated', %s, now(), '{}')",
                     (sub, f"{name}.{sub[:8]}@example.com"))
    return sub


@pytest.fixture(scope="module")
def tenants(citus_cluster: CitusCluster, citus_migrated: str) -> Iterator[Tenants]:
    """A migrated distributed database with two companies, each created by its owner
    through create_company_with_owner in the documented request sequence (failure 3:
    42501 on companies_102033 when the role was set after the propagate setting)."""
    with copy_of(citus_cluster, citus_migrated) as url:
        owner_a, owner_b = sign_up(url, "owner.a"), sign_up(url, "owner.b")
        company_a = str(one(url, owner_a, "select public.create_company_with_owner('Company A', null, 'free', 'Ana')"))
        company_b = str(one(url, owner_b, "select public.create_company_with_owner('Company B', null, 'free', 'Bea')"))
        with psycopg.connect(url, autocommit=True) as conn:  # billing, as the backend would
            conn.execute("update public.companies set subscription_plan = 'enterprise' where id in (%s, %s)",
                         (company_a, company_b))
        yield Tenants(url, owner_a, owner_b, company_a, company_b)


def test_the_request_sequence_reaches_the_workers_with_the_callers_identity(tenants: Tenants) -> None:
    t = tenants
    # The policies of users run on the worker holding the shard: the owner sees its own
    # row there (claims and role arrived), and nothing of company B.
    assert one(t.url, t.owner_a, "select count(*) from public.users where company_id = %s", t.company_a) == 1
    assert one(t.url, t.owner_a, "select count(*) from public.users where company_id = %s", t.company_b) == 0
    assert one(t.url, t.owner_a, "select auth.uid()::text from public.users where company_id = %s",
               t.company_a) == t.owner_a
    # subscription_plans.select_own_plan calls get_user_plan_code() (a definer helper
    # reading companies): failure 3 was 42501 on memberships_102014 from a member.
    plans = request(t.url, t.owner_a, [("select code from public.subscription_plans order by code", ())])[0]
    assert ("enterprise",) in plans


def test_a_keyed_member_query_is_routed_to_one_shard(tenants: Tenants) -> None:
    t = tenants
    plan = request(t.url, t.owner_a, [("explain select id from public.users where company_id = %s", (t.company_a,))])
    text = "\n".join(r[0] for r in plan[0])
    assert "Task Count: 1" in text, text


def _conversation(t: Tenants, company: str, owner: str) -> str:
    bot = one(t.url, owner, "insert into public.chatbots (company_id, name, system_prompt) "
              "values (%s, 'Support', 'Be kind.') returning id", company)
    return str(one(t.url, None, "insert into public.conversations (company_id, chatbot_id, end_user_id, channel) "
                   "values (%s, %s, 'visitor-1', 'web') returning id", company, bot, role="service_role"))


def _usage(t: Tenants, company: str) -> tuple[int, int]:
    with psycopg.connect(t.url) as conn:
        row = conn.execute("select coalesce(sum(message_count), 0)::int, coalesce(sum(total_message_count), 0)::int "
                           "from public.company_message_usage where company_id = %s", (company,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_messages_are_stored_and_counted_and_the_monthly_limit_holds(tenants: Tenants) -> None:
    # Failure 4: record_message_usage's updates had no company_id = of their own (a
    # distributed query from the shard trigger), then now() in an upsert's DO UPDATE.
    t = tenants
    conversation = _conversation(t, t.company_b, t.owner_b)
    with psycopg.connect(t.url, autocommit=True) as conn:
        conn.execute("update public.companies set monthly_message_limit = 2 where id = %s", (t.company_b,))
    insert = ("insert into public.messages (company_id, conversation_id, sender_type, content) "
              "values (%s, %s, %s, 'hello')")
    request(t.url, None, [(insert, (t.company_b, conversation, "end_user")),
                          (insert, (t.company_b, conversation, "bot"))], role="service_role")
    request(t.url, None, [(insert, (t.company_b, conversation, "bot"))], role="service_role")
    assert _usage(t, t.company_b) == (2, 3)
    with pytest.raises(psycopg.Error) as refused:
        request(t.url, None, [(insert, (t.company_b, conversation, "bot"))], role="service_role")
    assert refused.value.sqlstate == "NA001"
    request(t.url, None, [(insert, (t.company_b, conversation, "end_user"))], role="service_role")
    assert _usage(t, t.company_b) == (2, 4)


def test_chunks_keep_their_documents_chunk_count(tenants: Tenants) -> None:
    # Failure 5: a statement trigger with a transition table ("could not find named tuplestore").
    t = tenants
    document = one(t.url, t.owner_a, "insert into public.documents (company_id, title, mime_type, storage_path) "
                   "values (%s, 'Manual', 'text/plain', 'a/manual.txt') returning id", t.company_a)
    request(t.url, None, [("insert into public.document_chunks (company_id, document_id, chunk_index, content) "
                           "select %s, %s, i, 'chunk ' || i from generate_series(0, 2) i", (t.company_a, document))],
            role="service_role")
    count = "select chunk_count from public.documents where company_id = %s and id = %s"
    assert one(t.url, t.owner_a, count, t.company_a, document) == 3
    request(t.url, None, [("delete from public.document_chunks where company_id = %s and document_id = %s "
                           "and chunk_index = 0", (t.company_a, document))], role="service_role")
    assert one(t.url, t.owner_a, count, t.company_a, document) == 2


def test_a_member_edits_their_name_and_a_company_never_loses_its_owner(tenants: Tenants) -> None:
    # Failure 6: any update or delete of users failed (users_require_owner joined its
    # transition table with distributed tables).
    t = tenants
    request(t.url, t.owner_a, [("update public.users set full_name = 'Ana Renamed' "
                                "where company_id = %s and auth_user_id = %s", (t.company_a, t.owner_a))])
    assert one(t.url, t.owner_a, "select full_name from public.users where company_id = %s and auth_user_id = %s",
               t.company_a, t.owner_a) == "Ana Renamed"
    with pytest.raises(psycopg.Error) as refused:
        request(t.url, None, [
            ("delete from private.memberships where auth_user_id = %s", (t.owner_a,)),
            ("delete from public.users where company_id = %s and auth_user_id = %s", (t.company_a, t.owner_a)),
        ], role="service_role")
    assert refused.value.sqlstate == "42501" and "without an owner" in str(refused.value)


def test_an_invitation_is_accepted_once_by_its_invitee(tenants: Tenants) -> None:
    # Failure 7: the token lookup across the shards took a row lock (0A000).
    t = tenants
    invitee = sign_up(t.url, "invitee")
    with psycopg.connect(t.url) as conn:
        row = conn.execute("select email from auth.users where id = %s", (invitee,)).fetchone()
    assert row is not None
    token = one(t.url, t.owner_a, "select token from public.create_invitation(%s, 'operador')", row[0])
    user_id = one(t.url, invitee, "select public.accept_invitation(%s)", token)
    assert one(t.url, invitee, "select role::text from public.users where company_id = %s and id = %s",
               t.company_a, user_id) == "operador"
    with pytest.raises(psycopg.Error) as again:
        request(t.url, invitee, [("select public.accept_invitation(%s)", (token,))])
    assert again.value.sqlstate == "22023" and "already been used" in str(again.value)


def test_a_member_request_writes_twice_and_reads_after_writing(tenants: Tenants) -> None:
    # Failure 8: 25001 "placements that were modified in this transaction by a different
    # user" when a security definer helper (require_company_writable, get_user_plan_code)
    # read companies after the member's own write: on citus both run as their caller.
    t = tenants
    results = request(t.url, t.owner_a, [
        ("insert into public.chatbots (company_id, name, system_prompt) values (%s, 'Sales', 'Sell.')", (t.company_a,)),
        ("insert into public.documents (company_id, title, mime_type, storage_path) "
         "values (%s, 'Prices', 'text/plain', 'a/prices.txt')", (t.company_a,)),
        ("update public.documents set title = 'Price list' where company_id = %s and title = 'Prices'",
         (t.company_a,)),
        ("select code from public.subscription_plans where code = 'enterprise'", ()),
        ("select count(*) from public.conversations where company_id = %s", (t.company_a,)),
    ])
    assert results[3] == [("enterprise",)]


ENVELOPE = bytes([1]) + bytes(12) + b"sealed-secret" + bytes(16)  # envelope v1's shape: 0x01, nonce, ciphertext, tag


def test_a_member_writes_directly_and_calls_definer_rpcs_in_one_request(tenants: Tenants) -> None:
    # Issue 19, failure 8 for RPCs: a security definer RPC wrote the company's placements over
    # its owner's connection, the member's statements over the member's: 25001 either way.
    # On profile citus create_invitation, revoke_invitation and the credentials RPCs run on the
    # worker holding the company (force-delegated definers behind invoker RPCs), over the
    # member's connection: direct writes before and after them, in one request.
    t = tenants
    suffix = uuid.uuid4().hex[:8]
    bot = f"Before {suffix}"
    out = request(t.url, t.owner_a, [
        ("insert into public.chatbots (company_id, name, system_prompt) values (%s, %s, 'Sell.')", (t.company_a, bot)),
        ("select invitation_id from public.create_invitation(%s, 'operador')", (f"first.{suffix}@example.com",)),
        ("update public.chatbots set name = %s where company_id = %s and name = %s",
         (f"After {suffix}", t.company_a, bot)),
        ("select invitation_id from public.create_invitation(%s, 'supervisor')", (f"second.{suffix}@example.com",)),
    ])
    first, second = out[1][0][0], out[3][0][0]
    # The reverse order: the RPC first, the member's write after it.
    out = request(t.url, t.owner_a, [
        ("select public.revoke_invitation(%s)", (second,)),
        ("insert into public.integrations (company_id, type, name, config) values (%s, 'webhook', %s, '{}') "
         "returning id", (t.company_a, f"Hook {suffix}")),
    ])
    integration = out[1][0][0]
    out = request(t.url, t.owner_a, [
        ("insert into public.documents (company_id, title, mime_type, storage_path) "
         "values (%s, %s, 'text/plain', 'a/mixed.txt')", (t.company_a, f"Doc {suffix}")),
        ("select public.set_integration_credentials(%s, %s, 'kms:test') is not null", (integration, ENVELOPE)),
        ("update public.integrations set name = %s where company_id = %s and id = %s",
         (f"Hook 2 {suffix}", t.company_a, integration)),
        ("select has_credentials from public.integrations where company_id = %s and id = %s",
         (t.company_a, integration)),
        ("select public.clear_integration_credentials(%s)", (integration,)),
        ("select status::text from public.user_invitations where company_id = %s and id in (%s, %s) "
         "order by status", (t.company_a, first, second)),
        ("select count(*) from public.chatbots where company_id = %s and name = %s", (t.company_a, f"After {suffix}")),
    ])
    assert out[1] == [(True,)] and out[3] == [(True,)] and out[4] == [(True,)]
    assert out[5] == [("pending",), ("revoked",)]
    assert out[6] == [(1,)]


def test_a_delegated_rpcs_definer_refuses_another_companys_id(tenants: Tenants) -> None:
    # The definer bodies take the company as their first argument (the one Citus routes by)
    # and are executable by authenticated: called directly with another company's id they
    # refuse like an outsider, and write nothing there.
    t = tenants
    calls = [("select * from private.create_invitation(%s, 'x.' || gen_random_uuid() || '@example.com', 'operador')",
              (t.company_b,)),
             ("select private.clear_integration_credentials(%s, gen_random_uuid())", (t.company_b,))]
    for sql, params in calls:
        with pytest.raises(psycopg.Error) as refused:
            request(t.url, t.owner_a, [(sql, params)])
        assert refused.value.sqlstate == "42501", refused.value
    with psycopg.connect(t.url) as conn:
        pending = conn.execute("select count(*) from public.user_invitations where company_id = %s",
                               (t.company_b,)).fetchone()
    assert pending == (0,)


def test_a_read_only_company_refuses_its_members_writes_and_keeps_their_reads(tenants: Tenants) -> None:
    t = tenants
    with psycopg.connect(t.url, autocommit=True) as conn:
        conn.execute("update public.companies set subscription_status = 'suspended' where id = %s", (t.company_b,))
    try:
        with pytest.raises(psycopg.Error) as refused:
            request(t.url, t.owner_b, [("insert into public.documents (company_id, title, mime_type, storage_path) "
                                        "values (%s, 'Late', 'text/plain', 'b/late.txt')", (t.company_b,))])
        assert refused.value.sqlstate == "NA002"
        assert one(t.url, t.owner_b, "select count(*) from public.users where company_id = %s", t.company_b) == 1
    finally:
        with psycopg.connect(t.url, autocommit=True) as conn:
            conn.execute("update public.companies set subscription_status = 'active' where id = %s", (t.company_b,))


def test_the_analytics_and_metrics_jobs_run_on_the_cluster_and_a_rerun_changes_nothing(tenants: Tenants) -> None:
    # Failure 9 (two of the four jobs): clock_timestamp() in UPDATEs of job_runs, correlated
    # subqueries over the roll-up CTE, and job_runs written after a parallel multi-shard read.
    t = tenants
    conversation = _conversation(t, t.company_a, t.owner_a)
    insert = ("insert into public.messages (company_id, conversation_id, sender_type, content) "
              "values (%s, %s, %s, 'hi')")
    request(t.url, None, [(insert, (t.company_a, conversation, "end_user")),
                          (insert, (t.company_a, conversation, "bot"))], role="service_role")
    day = "select messages_count, conversations_count from public.analytics_daily a " \
          "join public.conversations c on c.company_id = a.company_id and c.chatbot_id = a.chatbot_id " \
          "where c.company_id = %s and c.id = %s and a.day = (now() at time zone 'UTC')::date"
    runs = "select job, status from private.job_runs where job in ('analytics', 'metrics') order by id"
    for _ in range(2):
        result = CliRunner().invoke(cli, ["--database-url", t.url, *ARGS, "jobs", "run", "analytics", "--days", "1"])
        assert result.exit_code == 0, result.output
        with psycopg.connect(t.url) as conn:
            assert conn.execute(day, (t.company_a, conversation)).fetchall() == [(2, 1)]
    metrics = CliRunner().invoke(cli, ["--database-url", t.url, *ARGS, "jobs", "run", "metrics"])
    assert metrics.exit_code == 0, metrics.output
    with psycopg.connect(t.url) as conn:
        assert conn.execute(runs).fetchall() == [("analytics", "succeeded")] * 2 + [("metrics", "succeeded")]
        tenant_rows = conn.execute(
            "select value from public.system_metrics where metric_name = 'tenant.rows' "
            "and labels = jsonb_build_object('company_id', %s::uuid, 'table', 'public.messages')",
            (t.company_a,)).fetchall()
    assert tenant_rows and tenant_rows[0][0] >= 2


def test_the_membership_rpcs_keep_the_copy_equal_to_users_on_the_cluster(tenants: Tenants) -> None:
    # Runs last: it hands company A's ownership over and removes its first owner.
    t = tenants
    invitee = sign_up(t.url, "member")
    with psycopg.connect(t.url) as conn:
        row = conn.execute("select email from auth.users where id = %s", (invitee,)).fetchone()
    assert row is not None
    token = one(t.url, t.owner_a, "select token from public.create_invitation(%s, 'operador')", row[0])
    member = one(t.url, invitee, "select public.accept_invitation(%s)", token)
    one(t.url, t.owner_a, "select public.set_member_role(%s, 'supervisor')", member)
    one(t.url, t.owner_a, "select public.set_member_active(%s, false)", member)
    assert one(t.url, invitee, "select count(*) from public.users where company_id = %s", t.company_a) == 0
    one(t.url, t.owner_a, "select public.set_member_active(%s, true)", member)
    one(t.url, t.owner_a, "select public.transfer_ownership(%s)", member)
    first_owner = one(t.url, t.owner_a, "select private.get_current_user_id()")
    one(t.url, invitee, "select public.remove_member(%s)", first_owner)
    with psycopg.connect(t.url) as conn:
        users = conn.execute("select id, role::text, is_active from public.users where company_id = %s order by id",
                             (t.company_a,)).fetchall()
        copy = conn.execute("select id, role::text, is_active from private.memberships where company_id = %s "
                            "order by id", (t.company_a,)).fetchall()
    assert users == copy
    assert (member, "owner", True) in users and all(u[0] != first_owner for u in users)
