"""The restore drill (`neurant-db restore-check`, issue 23) on real servers: a Debian
PostgreSQL 15 archiving its WAL with pgBackRest (Debian's package) into a repository on
local disk, migrated and populated; the drill backs it up, restores it to a point in time
into a scratch cluster and proves the copy. A copy changed before the checks, or restored
to the wrong moment, fails the drill. Without pgBackRest or its repository the command
says so in one line.

Skipped, with one line saying what is missing, without Debian's PostgreSQL 15, pgvector for
it or pgBackRest (installed here when root); under CI=true that skip is a failure."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.database import DatabaseTarget
from neurant_db.isolation import load_spec
from neurant_db.migrate import migrate
from neurant_db.paths import sql_root
from neurant_db.render import render_all
from neurant_db.restore_check import HEARTBEATS, DrillHooks, DrillOptions, _sample_cells, run_drill
from neurant_db.testdb import test_settings
from neurant_db.upgrade_check import generate_rows

from .debian_pg import (
    DebianServer,
    debian_postgres,
    ensure_debian_package,
    ensure_pg15_pgvector,
    missing_server_reason,
    server_user,
)

STANZA = "neurant"
DATABASE = "neurant"
SETTINGS = ["--profile", "vanilla", "--embedding-dimensions", "8"]
PGBACKREST = Path("/usr/bin/pgbackrest")


@dataclass(frozen=True)
class Source:
    server: DebianServer
    config: Path  # the pgBackRest configuration (repository, logs, locks under `work`)
    work: Path
    user: str | None  # the system user running the server and pgBackRest (None: ourselves)

    @property
    def url(self) -> str:
        return self.server.url(DATABASE)

    def drill_args(self, *extra: str) -> list[str]:
        args = ["--database-url", self.url, *SETTINGS, "restore-check", "--stanza", STANZA,
                "--pgbackrest-config", str(self.config), *extra]
        return [*args, "--os-user", self.user] if self.user else args

    def options(self, **changes: object) -> DrillOptions:
        base: dict[str, object] = {"stanza": STANZA, "pgbackrest_config": self.config, "os_user": self.user,
                                   "backup": False, "schema_check": False, "isolation_sample": 20}
        return DrillOptions(**{**base, **changes})  # type: ignore[arg-type]

    def pgbackrest(self, *args: str) -> None:
        done = subprocess.run([str(PGBACKREST), f"--config={self.config}", f"--stanza={STANZA}", *args],
                              capture_output=True, text=True, user=self.user, timeout=300, check=False)
        assert done.returncode == 0, done.stderr + done.stdout


def _private_dir(prefix: str, user: str | None) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _unavailable() -> str | None:
    return (missing_server_reason(15) or ensure_pg15_pgvector()
            or ensure_debian_package("pgbackrest", [PGBACKREST]))


@pytest.fixture(scope="module")
def source() -> Iterator[Source]:
    reason = _unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the restore drill must run under CI=true, but cannot: {reason}", pytrace=False)
        pytest.skip(f"restore drill not run: {reason}")
    user = server_user()
    work = _private_dir("neurant-pgbackrest-", user)
    config = work / "pgbackrest.conf"
    for folder in ("repo", "log", "lock", "spool"):
        (work / folder).mkdir()
        if user is not None:
            shutil.chown(work / folder, user)
    conf = {"archive_mode": "on", "archive_timeout": "60", "wal_level": "replica",
            "archive_command": f"'{PGBACKREST} --config={config} --stanza={STANZA} archive-push %p'"}
    try:
        with debian_postgres(15, conf) as server:
            config.write_text(
                "[global]\n"
                f"repo1-path={work / 'repo'}\nlog-path={work / 'log'}\nlock-path={work / 'lock'}\n"
                f"spool-path={work / 'spool'}\nlog-level-console=warn\nlog-level-file=info\n"
                "start-fast=y\ncompress-type=none\nrepo1-retention-full=2\n"
                f"[{STANZA}]\npg1-path={server.data}\npg1-socket-path={server.socket_dir}\npg1-port={server.port}\n",
                encoding="utf-8")
            if user is not None:
                shutil.chown(config, user)
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute(f"create database {DATABASE}")
            settings = test_settings("vanilla")
            migrate(DatabaseTarget(server.url(DATABASE)), render_all(settings), settings)
            with psycopg.connect(server.url(DATABASE), autocommit=True) as conn:
                generate_rows(conn, 600)
            src = Source(server, config, work, user)
            src.pgbackrest("stanza-create")
            src.pgbackrest("backup", "--type=full")  # the --no-backup drills restore from it
            yield src
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _scratch(src: Source) -> Path:
    """A scratch folder path (not created): the drill creates it and removes it."""
    return _private_dir("neurant-drill-parent-", src.user) / "scratch"


def test_restore_drill_restores_a_point_in_time_copy_and_proves_it(source: Source, tmp_path: Path) -> None:
    evidence = tmp_path / "drill.json"
    scratch = _scratch(source)
    try:
        result = CliRunner().invoke(cli, source.drill_args(
            "--scratch-dir", str(scratch), "--backup-type", "incr", "--isolation-sample", "60",
            "--out", str(evidence)))
        assert not scratch.exists(), "the scratch cluster is deleted after the drill"
    finally:
        shutil.rmtree(scratch.parent, ignore_errors=True)
    assert result.exit_code == 0, result.output
    assert "restore drill passed" in result.output and "RPO: " in result.output and "RTO: " in result.output
    report = json.loads(evidence.read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == {"archiving", "heartbeats", "tables", "migrations", "rls", "isolation", "doctor",
                           "erasures"}
    assert all(c["ok"] for c in checks.values()), checks
    assert checks["erasures"]["data"]["replayed"] == 0  # restored at the drill's own target: nothing is newer
    assert "schema check skipped" not in checks["doctor"]["detail"]
    assert checks["isolation"]["data"]["cells"] > 0
    # the heartbeat written after the target is in the source, not in the copy
    assert checks["heartbeats"]["data"]["after_target"] and not checks["heartbeats"]["data"]["found_after_target"]
    # every table compared, populated ones among them, equal to the source at the target
    populated = [t for t in report["tables"] if t["rows_source"]]
    assert len(report["tables"]) > 30 and len(populated) > 10
    assert all(t["ok"] and t["hash_source"] == t["hash_copy"] for t in report["tables"])
    assert 0 <= report["rpo"]["heartbeat_gap_seconds"] < 60
    assert report["rpo"]["archive_timeout_seconds"] == 60
    assert report["rto_seconds"] > 0 and report["steps"]["backup"]["taken"]
    assert report["steps"]["target"]["time"] == report["steps"]["target"]["restored_to"]
    with psycopg.connect(source.url) as conn:  # the heartbeats stay on the source, outside the tenant tables
        steps = [r[0] for r in conn.execute(f"select step from {HEARTBEATS} where drill = %s order by id",
                                            (report["drill"],))]
    assert steps == ["before-backup", "after-backup", "after-target"]


def test_restore_drill_fails_on_a_copy_changed_before_the_checks(source: Source) -> None:
    def tamper(url: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("set session_replication_role = replica")
            conn.execute("update public.messages set content = 'tampered' "
                         "where id = (select id from public.messages order by id limit 1)")

    report = run_drill(DatabaseTarget(source.url), source.options(), test_settings("vanilla"),
                       hooks=DrillHooks(before_checks=tamper))
    checks = {c.name: c for c in report.checks}
    assert not report.ok
    assert not checks["tables"].ok and checks["tables"].data["differ"] == ["public.messages"]
    assert all(c.ok for name, c in checks.items() if name != "tables"), checks


def test_restore_drill_fails_when_restored_to_the_wrong_moment(source: Source) -> None:
    """...and replays on the copy the erasure the source recorded after that moment."""
    with psycopg.connect(source.url, autocommit=True) as conn:
        row = conn.execute("select clock_timestamp()").fetchone()
        assert row is not None
        too_early = row[0]
        time.sleep(0.2)
        erased = conn.execute(
            "select public.erase_end_user(company_id, end_user_id, 'drill test erasure') from public.conversations "
            "where end_user_id is not null and end_user_id <> 'erased' order by id limit 1").fetchone()
        assert erased is not None
        conn.execute("set session_replication_role = replica")
        conn.execute("update public.integration_logs set latency_ms = latency_ms + 1 "
                     "where id = (select id from public.integration_logs order by id limit 1)")

    report = run_drill(DatabaseTarget(source.url), source.options(), test_settings("vanilla"),
                       hooks=DrillHooks(restore_target=lambda _target: too_early))
    checks = {c.name: c for c in report.checks}
    assert not report.ok
    assert not checks["heartbeats"].ok and checks["heartbeats"].data["missing"]
    # the erasure recorded after the restored moment is carried out again on the copy, last
    assert checks["erasures"].ok and checks["erasures"].data["replayed"] == 1, checks["erasures"]
    assert checks["erasures"].data["replayed_requests"] == [str(erased[0]["ledger_id"])]
    assert report.checks[-1].name == "erasures"
    assert not checks["tables"].ok and "public.integration_logs" in checks["tables"].data["differ"]


def test_restore_check_without_pgbackrest_says_so_in_one_line() -> None:
    result = CliRunner().invoke(cli, ["--database-url", "postgresql://nobody@127.0.0.1:1/none", "restore-check",
                                      "--stanza", STANZA, "--pgbackrest", "/nonexistent/pgbackrest"])
    assert result.exit_code == 2, result.output
    assert "pgBackRest is not installed" in result.output and "Traceback" not in result.output


def test_restore_check_with_a_missing_repository_says_so_in_one_line() -> None:
    reason = ensure_debian_package("pgbackrest", [PGBACKREST])
    if reason:
        pytest.skip(reason)
    user = server_user()
    work = _private_dir("neurant-norepo-", user)
    try:
        config = work / "pgbackrest.conf"
        config.write_text(f"[global]\nrepo1-path={work / 'repo'}\nlog-path={work}\nlock-path={work}\n"
                          f"[{STANZA}]\npg1-path={work / 'data'}\n", encoding="utf-8")
        if user is not None:
            shutil.chown(config, user)
        args = ["--database-url", "postgresql://nobody@127.0.0.1:1/none", "restore-check", "--stanza", STANZA,
                "--pgbackrest-config", str(config), *(["--os-user", user] if user else [])]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert f"pgBackRest stanza {STANZA}: missing stanza path" in result.output, result.output
        assert "Traceback" not in result.output
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_restore_check_never_shows_a_password_or_a_secret_pgbackrest_option(tmp_path: Path) -> None:
    reason = ensure_debian_package("pgbackrest", [PGBACKREST])
    if reason:
        pytest.skip(reason)
    user = server_user()
    work = _private_dir("neurant-secret-", user)
    evidence = tmp_path / "drill.json"
    try:
        config = work / "pgbackrest.conf"
        config.write_text(f"[global]\nrepo1-path={work / 'repo'}\nlog-path={work}\nlock-path={work}\n"
                          f"[{STANZA}]\npg1-path={work / 'data'}\n", encoding="utf-8")
        if user is not None:
            shutil.chown(config, user)
        args = ["--database-url", "postgresql://nobody:Sup3rSecretPassw0rd@127.0.0.1:1/none", "restore-check",
                "--stanza", STANZA, "--pgbackrest-config", str(config), "--out", str(evidence),
                "--pgbackrest-option", "repo1-cipher-pass=Cipher0Secret0Words", *(["--os-user", user] if user else [])]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        written = evidence.read_text()
        assert json.loads(written)["error"] and "repo1-cipher-pass=***" in written
        for secret in ("Sup3rSecretPassw0rd", "Cipher0Secret0Words"):
            assert secret not in result.output and secret not in written
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_drills_isolation_sample_never_deletes_a_global_row_the_copys_own_data_may_use() -> None:
    # A global table's delete targets are rows no company of the fixtures uses (plans); on a
    # copy of real data a company may use them (23503 by design, a failed drill that says
    # nothing about isolation: seen in CI). Every table is still sampled, deletes of tenant
    # tables too.
    specs = load_spec(sql_root() / "tests" / "isolation" / "access_spec.toml")
    for seed in (1, 2, 3):
        chosen = _sample_cells(specs, set(specs), 100_000, seed)
        assert [c for c in chosen if c[0].is_global and c[2] == "delete"] == []
        assert {c[0].name for c in chosen} == {s.name for s in specs.values()}
        assert any(c[2] == "delete" and not c[0].is_global for c in chosen)
