"""`neurant-db test`: runs the packaged pgTAP suites on a throwaway database of any
server, writes JUnit for CI, fails non-zero on a failing assertion, leaves nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg

from neurant_db.testdb import TestDatabase


def _server_url(db: TestDatabase) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(db.url)._replace(path="/postgres"))


def _databases(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("select datname from pg_database").fetchall()}


def test_neurant_db_test_writes_junit_and_drops_its_database(
        neurant_server: TestDatabase, tmp_path: Path) -> None:
    url = _server_url(neurant_server)
    before = _databases(url)
    exe = shutil.which("neurant-db") or str(Path(sys.executable).parent / "neurant-db")
    report = tmp_path / "junit.xml"
    result = subprocess.run(
        [exe, "--database-url", url, "test", "-k", "tenancy_rules", "--junit", str(report)],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    root = ET.parse(report).getroot()
    suite = root if root.tag == "testsuite" else root[0]
    assert int(suite.get("tests", "0")) > 20 and suite.get("failures") == "0"
    assert "a company can never have two owners" in report.read_text()
    assert _databases(url) == before


def test_neurant_db_test_fails_when_a_pgtap_assertion_fails(
        neurant_server: TestDatabase, tmp_path: Path) -> None:
    root = tmp_path / "sql"
    shutil.copytree(Path(__file__).parent.parent / "schema", root / "schema")
    for folder in ("functions", "policies", "indexes", "seeds"):
        shutil.copytree(Path(__file__).parent.parent / folder, root / folder)
    shutil.copytree(Path(__file__).parent / "fixtures", root / "tests" / "fixtures")
    shutil.copytree(Path(__file__).parent / "isolation", root / "tests" / "isolation")
    (root / "tests" / "pgtap").mkdir()
    (root / "tests" / "pgtap" / "0001_broken.sql").write_text(
        "select plan(2);\nselect ok(true, 'this rule holds');\n"
        "select is(1, 2, 'this rule is broken on purpose');\nselect * from finish();\n")
    env = {**os.environ, "NEURANT_SQL_ROOT": str(root)}
    exe = shutil.which("neurant-db") or str(Path(sys.executable).parent / "neurant-db")
    result = subprocess.run(
        [exe, "--database-url", _server_url(neurant_server), "test", "-k", "broken"],
        capture_output=True, text=True, check=False, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 1
    assert "this rule is broken on purpose" in result.stdout
    assert "1 failed" in result.stdout
