"""`neurant-db tenant import` onto a real Citus cluster (the session's, tests/citus_cluster.py):
a vanilla export of the fixtures' company A loads into a migrated, distributed database
(the membership lookup of profile citus derived from the users rows, the vanilla-only chatbot
visibility left out) with every table's count and sha256 identical to the export, and
doctor --data finds nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget, with_database
from neurant_db.doctor_data import run_data_checks
from neurant_db.tenant_transfer import export_tenant, import_tenant, table_hashes
from neurant_db.testdb import TestDatabase, commit_fixtures, test_settings

from .citus_cluster import CitusCluster, distributed_database
from .conftest import migrated_template
from .test_citus_cluster_requests import ARGS

COMPANY_A = "aaaaaaaa-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def vanilla_export(neurant_server: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if test_settings().profile != "vanilla":
        pytest.skip("the export comes from the vanilla test server")
    out = tmp_path_factory.mktemp("tenant-citus") / "export"
    with migrated_template(neurant_server.url, "tenant_citus_src", commit_fixtures) as name:
        export_tenant(DatabaseTarget(with_database(neurant_server.url, name)), COMPANY_A, out)
        yield out


def test_a_vanilla_export_imports_onto_the_citus_cluster_with_identical_hashes(
        citus_cluster: CitusCluster, vanilla_export: Path) -> None:
    with distributed_database(citus_cluster) as url:
        migrated = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "migrate"])
        assert migrated.exit_code == 0, migrated.output
        report = import_tenant(DatabaseTarget(url), vanilla_export)
        assert report["verified"] and report["skipped"] == ["private.chatbot_visibility"]
        assert report["derived"] == ["private.memberships"]
        manifest = json.loads((vanilla_export / "manifest.json").read_text())
        loaded = {**manifest, "tables": {t: e for t, e in manifest["tables"].items() if t in report["tables"]}}
        assert table_hashes(DatabaseTarget(url), COMPANY_A, loaded) == {
            t: (e["rows"], e["sha256"]) for t, e in loaded["tables"].items()}
        with psycopg.connect(url, autocommit=True) as conn:
            assert [f for f in run_data_checks(conn) if f.level == "error"] == []
