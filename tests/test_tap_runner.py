"""The pgTAP runner's strict parsing: what counts as a failure, a TODO, a SKIP, a
plan mismatch, and an SQL error that must keep the output produced before it."""

from __future__ import annotations

from neurant_db.tap import TapParser, TapResult, run_tap_sql
from neurant_db.testdb import TestDatabase


def parse(*lines: str) -> TapResult:
    parser = TapParser(TapResult("inline"))
    for line in lines:
        parser.feed(line)
    return parser.finish()


def test_a_not_ok_fails_and_an_ok_passes() -> None:
    r = parse("1..2", "ok 1 - holds", "not ok 2 - breaks", "# Failed test 2")
    assert not r.passed
    assert [a.failed for a in r.assertions] == [False, True]
    assert r.assertions[1].diagnostics == ["Failed test 2"]


def test_a_failing_todo_is_not_a_failure_and_keeps_its_reason() -> None:
    r = parse("1..1", "not ok 1 - later # TODO waiting for pgvector 0.9")
    assert r.passed
    assert r.assertions[0].directive == "TODO" and r.assertions[0].reason == "waiting for pgvector 0.9"


def test_skip_is_recognised_and_an_escaped_hash_stays_in_the_description() -> None:
    r = parse("1..2", "ok 1 - issue \\#42 fixed", "ok 2 - not here # SKIP no pg_cron")
    assert r.passed
    assert r.assertions[0].description == "issue #42 fixed"
    assert r.assertions[1].directive == "SKIP"


def test_fewer_tests_than_planned_fails_the_file() -> None:
    r = parse("1..3", "ok 1 - a", "ok 2 - b")
    assert not r.passed and r.problems == ["planned 3 tests but ran 2"]


def test_a_missing_plan_or_a_second_plan_fails_the_file() -> None:
    assert parse("ok 1 - a").problems[0].startswith("no plan")
    assert "more than one plan line" in parse("1..1", "ok 1 - a", "1..1").problems[0]


def test_out_of_sequence_numbers_fail_the_file() -> None:
    r = parse("1..2", "ok 1 - a", "ok 3 - b")
    assert not r.passed and "out of sequence" in r.problems[0]


PREAMBLE = [("pgtap", "create schema if not exists tap;\n"
                       "create extension if not exists pgtap schema tap;\n"
                       "set local search_path = public, tap;\n")]


def test_an_sql_error_fails_the_file_but_keeps_the_tap_before_it(neurant_server: TestDatabase) -> None:
    r = run_tap_sql(neurant_server.url, "err", "begin;\nselect plan(3);\nselect ok(true, 'first');\n"
                    "select * from no_such_table;\nselect ok(true, 'never');\nrollback;\n", PREAMBLE)
    assert not r.passed
    assert r.error is not None and "[42P01]" in r.error and "line 4" in r.error
    assert [a.description for a in r.assertions] == ["first"]
    assert r.plan == 3


def test_a_commit_in_a_test_file_is_refused(neurant_server: TestDatabase) -> None:
    r = run_tap_sql(neurant_server.url, "commit", "select plan(1);\ncommit;\nselect ok(true);\n", PREAMBLE)
    assert r.error is not None and "COMMIT" in r.error


def test_a_real_pgtap_file_passes_with_todo_and_skip(neurant_server: TestDatabase) -> None:
    sql = ("select plan(4);\nselect ok(true, 'plain');\n"
           "select * from todo('not done yet', 1);\nselect ok(false, 'expected to fail');\n"
           "select skip('no pg_cron here', 1);\nselect is(2, 2, 'equal');\n"
           "select * from finish();\n")
    r = run_tap_sql(neurant_server.url, "real", sql, PREAMBLE)
    assert r.passed, (r.problems, r.error, r.output)
    assert r.counts() == {"passed": 2, "failed": 0, "todo": 1, "skipped": 1}




# pg_monitor: a role every server has; the role a statement ran as is kept in a setting and
# the assertions run as the superuser again (pgTAP writes its own temp tables).
def test_one_transaction_per_statement_carries_the_role_and_settings_to_the_next(neurant_server: TestDatabase) -> None:
    # As on a Citus cluster (tests/test_citus_cluster_suite.py): each statement commits on its
    # own, and runs as the statement before it left the role and the settings.
    sql = ("select plan(5);\n"
           "select set_config('neurant.xid', txid_current()::text, true), set_config('role', 'pg_monitor', true);\n"
           "select set_config('neurant.who', current_user, true), set_config('role', 'none', true);\n"
           "select isnt(txid_current()::text, current_setting('neurant.xid'),\n"
           "            'each statement is a transaction of its own');\n"
           "select is(current_setting('neurant.who'), 'pg_monitor', 'the role goes on to the next statement');\n"
           "select set_config('search_path', 'pg_catalog, public, tap', true);\n"
           "select is(current_setting('search_path'), 'pg_catalog, public, tap', 'the search path goes on');\n"
           "select isnt(current_setting('neurant.xid', true), null, 'a neurant.* setting goes on');\n"
           "set local enable_seqscan = off;\n"
           "select is(current_setting('enable_seqscan'), 'off', 'a set local goes on');\n"
           "select * from finish();\n")
    r = run_tap_sql(neurant_server.url, "carried", sql, PREAMBLE, statement_transactions=True)
    assert r.passed, (r.problems, r.error, r.output)
    assert len(r.assertions) == 5

def test_a_refused_statement_is_recorded_and_undone_alone_when_asked(neurant_server: TestDatabase) -> None:
    sql = ("select plan(3);\nselect ok(true, 'first');\nselect set_config('neurant.probe', 'before', true);\n"
           "select set_config('neurant.probe', 'lost', true), ok(1 / 0 = 1, 'never');\n"
           "select is(current_setting('neurant.probe'), 'before', 'the state before it goes on');\n"
           "select * from finish();\n")
    r = run_tap_sql(neurant_server.url, "refused", sql, PREAMBLE, statement_transactions=True,
                    continue_after_errors=True)
    assert r.error is None and len(r.statement_errors) == 1 and "[22012]" in r.statement_errors[0]
    assert [a.description for a in r.assertions] == ["first", "the state before it goes on"]
    assert not r.assertions[1].failed and not r.passed
    assert r.problems == ["planned 3 tests but ran 2"]
    stopped = run_tap_sql(neurant_server.url, "stopped", sql, PREAMBLE, statement_transactions=True)
    assert stopped.error is not None and "[22012]" in stopped.error and stopped.statement_errors == []
