"""The lifecycle jobs on a real Citus cluster (tests/citus_cluster.py), run with
`neurant-db jobs run` as an operator would (issue 19, failure 9): archive, cold-export and
retention move and delete the rows of two companies company by company, every statement
naming its company (functions/3310, 3320, runner/neurant_db/cold_storage.py), with the
guarantees they have on plain PostgreSQL: legal holds respected, a row a member's open
transaction holds skipped and taken by the next run, bounded batches, one run per lock group,
the private.job_runs ledger, cold exports verified before their rows are deleted.
The tests of this module run in order on one database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from neurant_db.citus_request import citus_request
from neurant_db.cli import cli
from neurant_db.cold_storage import verify_export

from .citus_cluster import CitusCluster, copy_of
from .test_citus_cluster_requests import ARGS, one, sign_up

NOW = datetime.now(UTC)
ARCHIVE_AS_OF = (NOW + timedelta(days=2 * 365)).strftime("%Y-%m-%dT%H:%M:%S")  # past archive_after_days (365)
COLD_AS_OF = (NOW + timedelta(days=4 * 365)).strftime("%Y-%m-%dT%H:%M:%S")  # past cold_after_days (1095)


@dataclass(frozen=True)
class World:
    url: str
    owner_b: str
    companies: dict[str, str]  # A, B -> company id
    conversations: dict[str, list[str]]  # A, B -> three conversation ids


def jobs(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--database-url", url, *ARGS, "jobs", "run", *args])


def rows(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def value(cur: psycopg.Cursor[tuple[object, ...]]) -> object:
    row = cur.fetchone()
    assert row is not None
    return row[0]


def where(url: str, conversation: str) -> str:
    """Where a conversation and its messages are: live, archive, gone (or split: a failure)."""
    live = rows(url, "select (select count(*) from public.conversations where id = %s), "
                     "(select count(*) from public.messages where conversation_id = %s)", conversation, conversation)[0]
    archived = rows(url, "select (select count(*) from archive.conversations_archived where id = %s), "
                         "(select count(*) from archive.messages_archived where conversation_id = %s)",
                    conversation, conversation)[0]
    if live[0] == 1 and live[1] == 2 and archived == (0, 0):
        return "live"
    if archived[0] == 1 and archived[1] == 2 and live == (0, 0):
        return "archive"
    if live == (0, 0) and archived == (0, 0):
        return "gone"
    return f"split: live {live}, archived {archived}"


@pytest.fixture(scope="module")
def world(citus_cluster: CitusCluster, citus_migrated: str) -> Iterator[World]:
    """Two companies created by their owners, each with a chatbot, an integration with two
    logs, three closed conversations of two messages (the first with a reaction and an
    escalation) and their day of analytics; a legal hold on A's third conversation."""
    with copy_of(citus_cluster, citus_migrated) as url:
        owners = {name: sign_up(url, f"owner.{name.lower()}") for name in "AB"}
        companies = {name: str(one(url, sub, "select public.create_company_with_owner(%s, null, 'free', 'Owner')",
                                   f"Company {name}")) for name, sub in owners.items()}
        conversations: dict[str, list[str]] = {}
        with psycopg.connect(url, autocommit=True) as conn:  # billing and the backend's writes
            for name, company in companies.items():
                conn.execute("update public.companies set subscription_plan = 'enterprise' where id = %s", (company,))
                bot = value(conn.execute("insert into public.chatbots (company_id, name, system_prompt) "
                                   "values (%s, 'Support', 'Be kind.') returning id", (company,)))
                hook = value(conn.execute("insert into public.integrations (company_id, type, name, config) "
                                    "values (%s, 'webhook', 'hook', '{}') returning id", (company,)))
                for _ in range(2):
                    conn.execute("insert into public.integration_logs (company_id, integration_id, direction, "
                                 "operation, status) values (%s, %s, 'outbound', 'notify', 'success')", (company, hook))
                ids = []
                for i in range(3):
                    conversation = value(conn.execute(
                        "insert into public.conversations (company_id, chatbot_id, end_user_id, channel) "
                        "values (%s, %s, %s, 'web') returning id", (company, bot, f"visitor-{i}")))
                    message = None
                    for sender in ("end_user", "bot"):
                        message = value(conn.execute(
                            "insert into public.messages (company_id, conversation_id, sender_type, content) "
                            "values (%s, %s, %s, 'hello') returning id", (company, conversation, sender)))
                    if i == 0:
                        conn.execute("insert into public.message_reactions (company_id, message_id, conversation_id, "
                                     "chatbot_id, reaction) values (%s, %s, %s, %s, 'thumbs_up')",
                                     (company, message, conversation, bot))
                        conn.execute("insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, "
                                     "reason, detail) values (%s, %s, %s, 'manual', 'by the test')",
                                     (company, conversation, bot))
                    conn.execute("update public.conversations set status = 'closed' where company_id = %s and id = %s",
                                 (company, conversation))
                    ids.append(str(conversation))
                conversations[name] = ids
            conn.execute("insert into public.legal_holds (company_id, conversation_id, reason, set_by) "
                         "values (%s, %s, 'Litigation 2026-19', 'legal@a.example')",
                         (companies["A"], conversations["A"][2]))
        analytics = jobs(url, "analytics", "--days", "1")
        assert analytics.exit_code == 0, analytics.output
        yield World(url, owners["B"], companies, conversations)


def test_a_job_does_not_start_while_a_live_session_runs_one_of_its_lock_group(world: World) -> None:
    with psycopg.connect(world.url, autocommit=True) as holder:
        run = value(holder.execute("select private.job_start('retention', '{}', false)"))
        try:
            refused = jobs(world.url, "archive", "--as-of", ARCHIVE_AS_OF)
            assert refused.exit_code == 4, refused.output
            assert f"retention run {run}" in refused.output
        finally:
            holder.execute("select private.job_finish(%s, 'succeeded')", (run,))


def test_archive_moves_both_companies_keeps_the_held_conversation_and_waits_for_a_members_open_transaction(
        world: World) -> None:
    w = world
    dry = jobs(w.url, "archive", "--as-of", ARCHIVE_AS_OF, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    total = json.loads(dry.stdout)["rows"]
    assert (total["conversations"], total["messages"], total["message_reactions"], total["hitl_escalations"],
            total["integration_logs"]) == (5, 10, 2, 2, 4), total
    assert total["analytics_daily"] >= 2
    b_first = w.conversations["B"][0]
    with psycopg.connect(w.url, autocommit=True) as member_conn, \
            citus_request(member_conn, {"sub": w.owner_b, "role": "authenticated"}) as member:
        # B's owner reacts to a message of B's first conversation and has not committed: its
        # foreign key check holds the message (FOR KEY SHARE), which the archive skips.
        message = rows(w.url, "select id, chatbot_id from public.messages where company_id = %s "
                              "and conversation_id = %s and sender_type = 'bot'", w.companies["B"], b_first)[0]
        member.execute("insert into public.message_reactions (company_id, message_id, conversation_id, chatbot_id, "
                       "reaction) values (%s, %s, %s, %s, 'thumbs_down')",
                       (w.companies["B"], message[0], b_first, message[1]))
        first = jobs(w.url, "archive", "--as-of", ARCHIVE_AS_OF, "--batch-size", "2", "--json")
        assert first.exit_code == 0, first.output
    moved = json.loads(first.stdout)
    assert moved["status"] == "succeeded" and moved["rows"]["conversations"] == 4, moved
    assert moved["batches"] >= 4, "batches of at most 2 conversations (and 2 logs, 2 days)"
    places = {(name, i): where(w.url, c) for name, ids in w.conversations.items() for i, c in enumerate(ids)}
    assert places == {("A", 0): "archive", ("A", 1): "archive", ("A", 2): "live",  # held
                      ("B", 0): "live",  # the member's open transaction held a row of it
                      ("B", 1): "archive", ("B", 2): "archive"}, places
    assert rows(w.url, "select count(*) from public.integration_logs") == [(0,)]
    assert rows(w.url, "select count(*) from public.analytics_daily") == [(0,)]

    second = jobs(w.url, "archive", "--as-of", ARCHIVE_AS_OF, "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["rows"]["conversations"] == 1
    assert where(w.url, b_first) == "archive"
    assert rows(w.url, "select count(*) from archive.message_reactions_archived where conversation_id = %s",
                b_first) == [(2,)], "the member's reaction, committed meanwhile, moved with its conversation"
    assert where(w.url, w.conversations["A"][2]) == "live"
    third = jobs(w.url, "archive", "--as-of", ARCHIVE_AS_OF, "--json")
    assert third.exit_code == 0 and sum(json.loads(third.stdout)["rows"].values()) == 0, third.output
    runs = rows(w.url, "select status, dry_run, batches, rows_moved->>'conversations' from private.job_runs "
                       "where job = 'archive' order by id")
    assert [r[:2] for r in runs] == [("succeeded", True)] + [("succeeded", False)] * 3
    assert [r[3] for r in runs[1:3]] == ["4", "1"]


def test_cold_export_writes_verified_files_per_company_then_deletes_only_what_they_hold(
        world: World, tmp_path: Path) -> None:
    w = world
    held = w.conversations["B"][1]
    with psycopg.connect(w.url, autocommit=True) as conn:
        conn.execute("insert into public.legal_holds (company_id, conversation_id, reason, set_by) "
                     "values (%s, %s, 'Regulator 2026-7', 'dpo@b.example')", (w.companies["B"], held))
    out = tmp_path / "cold"
    result = jobs(w.url, "cold-export", "--out", str(out), "--as-of", COLD_AS_OF, "--batch-size", "1", "--json")
    assert result.exit_code == 0, result.output
    exports = sorted(p for p in out.iterdir() if p.is_dir())
    manifests = [json.loads((p / "manifest.json").read_text()) for p in exports]
    assert all(len(m["companies"]) == 1 for m in manifests), "one company per export"
    assert {m["companies"][0] for m in manifests} == set(w.companies.values())
    counted: dict[str, int] = {}
    for export in exports:
        for table, n in verify_export(export).items():
            counted[table] = counted.get(table, 0) + n
    # A: its two archived conversations; B: two of three (the third is held)
    assert counted["archive.conversations_archived"] == 4 and counted["archive.messages_archived"] == 8
    assert counted["archive.message_reactions_archived"] == 3 and counted["archive.hitl_escalations_archived"] == 2
    assert counted["archive.integration_logs_archived"] == 4
    assert rows(w.url, "select id::text from archive.conversations_archived") == [(held,)]
    assert where(w.url, held) == "archive"
    recorded = rows(w.url, "select count(*), count(distinct job_run_id) from private.cold_exports")
    assert recorded == [(len(exports), 1)]

    restored = CliRunner().invoke(cli, ["--database-url", w.url, *ARGS, "archive", "restore", str(exports[0])])
    assert restored.exit_code == 0, restored.output
    back = manifests[0]["tables"]["archive.conversations_archived"]["rows"]
    assert rows(w.url, "select count(*) from archive.conversations_archived") == [(1 + back,)]


def test_retention_deletes_both_companies_past_their_plan_and_keeps_every_held_conversation(world: World) -> None:
    w = world
    with psycopg.connect(w.url, autocommit=True) as conn:
        # a short retention (audit rows still need 7 years)
        conn.execute("update public.subscription_plans set archive_after_days = 30, cold_after_days = 60, "
                     "delete_after_days = 400 where code = 'enterprise'")
        conn.execute("insert into public.conversations (company_id, chatbot_id, end_user_id, channel, status) "
                     "select company_id, chatbot_id, 'late', 'web', 'active' from public.conversations "
                     "where company_id = %s and id = %s", (w.companies["A"], w.conversations["A"][2]))
        conn.execute("update public.conversations set status = 'closed' where end_user_id = 'late'")
        for company in w.companies.values():  # audit rows 9 years old at the run's as-of
            conn.execute("insert into public.audit_logs (company_id, actor_role, action, event_name, created_at) "
                         "values (%s, 'service_role', 'custom', 'data.export', now() - interval '6 years')",
                         (company,))
        audit = int(str(value(conn.execute("select count(*) from public.audit_logs"))))
        # The purge hook fires on the workers: a delete outside the purge is refused there,
        # a planted token too.
        conn.execute("set neurant.audit_purge = '0:1:2'")
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("delete from public.audit_logs where event_name = 'data.export'")
        assert refused.value.sqlstate == "42501"
    as_of = (NOW + timedelta(days=3 * 365)).strftime("%Y-%m-%dT%H:%M:%S")
    dry = jobs(w.url, "retention", "--as-of", as_of, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    result = jobs(w.url, "retention", "--as-of", as_of, "--batch-size", "1", "--json")
    assert result.exit_code == 0, result.output
    deleted = json.loads(result.stdout)["rows"]
    counted = json.loads(dry.stdout)["rows"]  # conversations and messages, logs, analytics
    assert {k: deleted.get(k) for k in counted} == counted, "the dry run counts what the run deletes"
    assert deleted["public.conversations"] == 1 and "public.messages" not in deleted
    assert deleted["public.audit_logs"] == 2, "the audit purge's token reached the workers"
    assert rows(w.url, "select count(*) from public.audit_logs where event_name = 'data.export'") == [(0,)]
    assert rows(w.url, "select count(*) from public.audit_logs") == [(audit - 2,)], "younger rows stay"
    assert rows(w.url, "select count(*) from public.conversations where end_user_id = 'late'") == [(0,)]
    assert where(w.url, w.conversations["A"][2]) == "live"
    assert where(w.url, w.conversations["B"][1]) == "archive"
    assert rows(w.url, "select count(*) from archive.conversations_archived") == [(1,)]
    assert rows(w.url, "select count(*) from archive.integration_logs_archived") == [(0,)]
    assert rows(w.url, "select job, status from private.job_runs where job = 'retention' and not dry_run "
                       "and params ? 'as_of'") == [("retention", "succeeded")]


def test_retention_run_by_a_login_acting_as_service_role_purges_the_audit_trail_on_the_cluster(world: World) -> None:
    # A job login that is no superuser: `jobs run` switches to service_role (jobs.py). Found by
    # pgTAP 3010 on the cluster: the batch took the companies' row locks over service_role's
    # connections, then the audit purge, a definer, met those placements as its owner (25001);
    # and the purge's clock, evaluated on the workers in the owner's superuser sessions, let
    # service_role look forward. The purge now runs in transactions of its own for any role but
    # its owner, its clock read on the coordinator.
    w = world
    with psycopg.connect(w.url, autocommit=True) as conn:
        conn.execute("create role citus_jobs_login login in role service_role")
        for company in w.companies.values():
            conn.execute("insert into public.audit_logs (company_id, actor_role, action, event_name, created_at) "
                         "values (%s, 'service_role', 'custom', 'data.export', now() - interval '8 years')",
                         (company,))
    login = w.url.replace("postgresql://postgres@", "postgresql://citus_jobs_login@")
    try:
        audit = rows(w.url, "select count(*) from public.audit_logs")[0][0]
        result = CliRunner().invoke(cli, ["--database-url", login, *ARGS, "jobs", "run", "retention", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["rows"].get("public.audit_logs") == 2
        assert rows(w.url, "select count(*) from public.audit_logs") == [(int(str(audit)) - 2,)]
        # A future as-of is clamped to now for service_role: nothing younger than 7 years goes.
        future = (NOW + timedelta(days=20 * 365)).strftime("%Y-%m-%dT%H:%M:%S")
        again = CliRunner().invoke(cli, ["--database-url", login, *ARGS, "jobs", "run", "retention",
                                         "--as-of", future, "--json"])
        assert again.exit_code == 0, again.output
        assert "public.audit_logs" not in json.loads(again.stdout)["rows"]
        assert rows(w.url, "select count(*) from public.audit_logs") == [(int(str(audit)) - 2,)]
    finally:
        with psycopg.connect(w.url, autocommit=True) as conn:
            conn.execute("drop role citus_jobs_login")
