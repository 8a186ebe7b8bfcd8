"""`neurant-db doctor --data` on a real Citus cluster (tests/citus_cluster.py): on the
migrated, distributed database with the test fixtures every check runs (its distributed
queries are accepted) and finds nothing; a company counter set wrong is found."""

from __future__ import annotations

import json

import psycopg
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.testdb import commit_fixtures

from .citus_cluster import CitusCluster, copy_of
from .test_citus_cluster_requests import ARGS

COMPANY_A = "aaaaaaaa-0000-0000-0000-000000000000"


def _doctor_data(url: str) -> tuple[int, list[dict[str, str]]]:
    result = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "doctor", "--data", "--json"])
    return result.exit_code, json.loads(result.output)


def test_doctor_data_runs_on_the_cluster_and_finds_a_drifted_counter(
        citus_cluster: CitusCluster, citus_migrated: str) -> None:
    with copy_of(citus_cluster, citus_migrated) as url:
        commit_fixtures(url)
        code, findings = _doctor_data(url)
        assert [f for f in findings if f["level"] != "info"] == [] and code == 0, findings
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("update public.companies set current_chatbot_count = current_chatbot_count + 3 "
                         "where id = %s", (COMPANY_A,))
        code, findings = _doctor_data(url)
        assert code == 1
        assert [(f["check"], f["object"]) for f in findings if f["level"] == "error"] == [
            ("data.counter", f"public.companies {COMPANY_A} current_chatbot_count")]
