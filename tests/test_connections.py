"""How the runner connects: everything libpq accepts (keyword DSNs, PG* variables,
pg_service.conf, .pgpass), no password ever printed, every session named
(application_name), a lock wait naming its blocker, a statement timeout, and
migrate/rollback/jobs refused through a transaction pooler before anything runs.

The pooler is a real PgBouncer (tests/bouncer.py) in front of the test server, with
password authentication (md5 against its auth file), so a .pgpass password is
really checked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from neurant_db.cli import cli
from neurant_db.testdb import TestDatabase

from .bouncer import run_pgbouncer, wait_for
from .conftest import write

SECRET = "Zq7-secret-not-for-logs"
PG_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE",
                "PGSERVICEFILE", "PGPASSFILE", "DATABASE_URL")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def no_pg_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No libpq variable set, and a state folder of its own: an embedded server started
    by the runner would appear there (returned)."""
    for name in PG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "neurant-home"
    monkeypatch.setenv("NEURANT_HOME", str(home))
    return home


def applied(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        if conn.execute("select to_regclass('neurant_meta.schema_migrations')").fetchone() == (None,):
            return []
        return [r[0] for r in conn.execute("select version from neurant_meta.schema_migrations order by 1")]


# --- libpq's ways of naming a server -------------------------------------------------------

def test_pg_variables_name_the_server_and_no_embedded_server_starts(
        sql_tree: Path, scratch_db: str, no_pg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = conninfo_to_dict(scratch_db)
    monkeypatch.setenv("PGHOST", str(params["host"]))
    monkeypatch.setenv("PGPORT", str(params["port"]))
    monkeypatch.setenv("PGUSER", str(params["user"]))
    monkeypatch.setenv("PGDATABASE", str(params["dbname"]))
    result = invoke("migrate")
    assert result.exit_code == 0, result.output
    assert applied(scratch_db) == [10, 20, 30], "the migrations did not reach the PG* server"
    assert not (no_pg_env / "pgdata").exists(), "an embedded server was started although PGHOST names one"
    assert "embedded" not in result.output


def test_a_pg_service_file_names_the_server(
        sql_tree: Path, scratch_db: str, no_pg_env: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    params = conninfo_to_dict(scratch_db)
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[neurant-app]\nhost={params['host']}\nport={params['port']}\n"
                        f"user={params['user']}\ndbname={params['dbname']}\n", encoding="utf-8")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.setenv("PGSERVICE", "neurant-app")
    assert invoke("migrate").exit_code == 0
    assert applied(scratch_db) == [10, 20, 30]
    assert not (no_pg_env / "pgdata").exists()
    # and as a keyword DSN naming the service
    monkeypatch.delenv("PGSERVICE")
    assert invoke("--database-url", "service=neurant-app", "rollback", "--steps", "1").exit_code == 0
    assert applied(scratch_db) == [10, 20]


def test_nothing_naming_a_server_says_in_one_line_that_the_embedded_one_is_used(
        sql_tree: Path, scratch_db: str, no_pg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import neurant_db.server as server

    # The embedded server the runner would start is the test server itself (its socket),
    # reached through the runner's own server.start_local (no second server in the suite).
    params = conninfo_to_dict(scratch_db)
    local = server.LocalServer(pgdata=no_pg_env / "pgdata", socket_dir=Path(str(params["host"])),
                               port=int(str(params["port"])))
    started: list[bool] = []

    def start_local() -> server.LocalServer:
        started.append(True)
        return local

    monkeypatch.setattr(server, "start_local", start_local)
    monkeypatch.setattr(server, "LOCAL_DATABASE", str(params["dbname"]))
    monkeypatch.setattr(server.LocalServer, "url",
                        lambda self, database=str(params["dbname"]): scratch_db)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert started == [True]
    notices = [line for line in result.output.splitlines() if "embedded" in line]
    assert len(notices) == 1 and "PGHOST" in notices[0] and "DATABASE_URL" in notices[0], result.output
    # with PGHOST set, start_local is never called
    started.clear()
    monkeypatch.setenv("PGHOST", str(params["host"]))
    monkeypatch.setenv("PGPORT", str(params["port"]))
    monkeypatch.setenv("PGDATABASE", str(params["dbname"]))
    monkeypatch.setenv("PGUSER", str(params["user"]))
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert started == [] and "embedded" not in result.output


# --- PgBouncer with password authentication, in each pool mode ------------------------------

@dataclass
class Bouncer:
    port: int
    user: str
    password: str
    server_url: str

    def dsn(self, database: str, **extra: str) -> str:
        return make_conninfo(host="127.0.0.1", port=str(self.port), dbname=database, user=self.user,
                             password=self.password, **extra)


def _bouncer(neurant_server: TestDatabase, tmp_path_factory: pytest.TempPathFactory,
             mode: str) -> Iterator[Bouncer]:
    server = conninfo_to_dict(neurant_server.url)
    line = f"* = host={server['host']} port={server['port']} user={server['user']}"
    user, password = "app_deployer", SECRET
    with run_pgbouncer(tmp_path_factory.mktemp(f"pgbouncer-{mode}"), neurant_server.url, line,
                       f"pool_mode = {mode}\nauth_type = md5\nauth_file = {{folder}}/users.txt\n"
                       "default_pool_size = 8\nmax_client_conn = 50\n",
                       files={"users.txt": f'"{user}" "{password}"\n'}) as port:
        bouncer = Bouncer(port, user, password, neurant_server.url)
        wait_for(bouncer.dsn(str(server["dbname"])))
        yield bouncer


@pytest.fixture(scope="module")
def transaction_bouncer(neurant_server: TestDatabase,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bouncer]:
    yield from _bouncer(neurant_server, tmp_path_factory, "transaction")


@pytest.fixture(scope="module")
def session_bouncer(neurant_server: TestDatabase,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bouncer]:
    yield from _bouncer(neurant_server, tmp_path_factory, "session")


@pytest.fixture(scope="module")
def statement_bouncer(neurant_server: TestDatabase,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bouncer]:
    yield from _bouncer(neurant_server, tmp_path_factory, "statement")


def dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def assert_untouched(url: str) -> None:
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regnamespace('neurant_meta')").fetchone() == (None,), \
            "the runner wrote to the database before refusing"


def test_migrate_through_a_transaction_pooler_is_refused_before_anything_is_written(
        sql_tree: Path, scratch_db: str, transaction_bouncer: Bouncer) -> None:
    result = invoke("--database-url", transaction_bouncer.dsn(dbname(scratch_db)), "migrate")
    assert result.exit_code != 0, result.output
    assert "transaction pooler" in result.output and "session" in result.output, result.output
    assert_untouched(scratch_db)
    result = invoke("--database-url", transaction_bouncer.dsn(dbname(scratch_db)), "migrate", "--dry-run")
    assert result.exit_code != 0 and "transaction pooler" in result.output


def test_migrate_through_a_statement_pooler_is_refused_too(
        sql_tree: Path, scratch_db: str, statement_bouncer: Bouncer) -> None:
    result = invoke("--database-url", statement_bouncer.dsn(dbname(scratch_db)), "migrate")
    assert result.exit_code != 0 and "transaction pooler" in result.output, result.output
    assert_untouched(scratch_db)


def test_rollback_through_a_transaction_pooler_is_refused(
        sql_tree: Path, scratch_db: str, transaction_bouncer: Bouncer) -> None:
    assert invoke("--database-url", scratch_db, "migrate").exit_code == 0
    result = invoke("--database-url", transaction_bouncer.dsn(dbname(scratch_db)), "rollback", "--steps", "1")
    assert result.exit_code != 0 and "transaction pooler" in result.output, result.output
    assert applied(scratch_db) == [10, 20, 30]


def test_jobs_run_through_a_transaction_pooler_is_refused(
        scratch_db: str, transaction_bouncer: Bouncer) -> None:
    result = invoke("--database-url", transaction_bouncer.dsn(dbname(scratch_db)), "jobs", "run", "metrics")
    assert result.exit_code != 0 and "transaction pooler" in result.output, result.output


def test_migrate_and_rollback_through_a_session_pooler_work_and_keep_the_lock_honest(
        sql_tree: Path, scratch_db: str, session_bouncer: Bouncer) -> None:
    dsn = session_bouncer.dsn(dbname(scratch_db))
    result = invoke("--database-url", dsn, "migrate")
    assert result.exit_code == 0, result.output
    assert applied(scratch_db) == [10, 20, 30]
    assert invoke("--database-url", dsn, "rollback", "--steps", "1").exit_code == 0
    assert applied(scratch_db) == [10, 20]
    # the lock died with the run: a direct run takes it at once
    assert invoke("--database-url", scratch_db, "migrate", "--lock-timeout", "0").exit_code == 0


def test_a_pgpass_password_is_used(sql_tree: Path, scratch_db: str, session_bouncer: Bouncer,
                                   no_pg_env: Path, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(session_bouncer.port))
    monkeypatch.setenv("PGUSER", session_bouncer.user)
    monkeypatch.setenv("PGDATABASE", dbname(scratch_db))
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "nothing"))
    refused = invoke("status")
    assert refused.exit_code == 3, "the pooler let a client in without its password"
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{session_bouncer.port}:*:{session_bouncer.user}:{SECRET}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    result = invoke("migrate")
    assert result.exit_code == 0, result.output
    assert applied(scratch_db) == [10, 20, 30]
    assert SECRET not in result.output
    assert not (no_pg_env / "pgdata").exists()


# --- no password in any output ---------------------------------------------------------------

def test_no_password_is_printed_on_success_in_uri_keyword_or_query_form(
        sql_tree: Path, scratch_db: str, session_bouncer: Bouncer) -> None:
    db = dbname(scratch_db)
    b = session_bouncer
    forms = [
        b.dsn(db),
        f"postgresql://{b.user}:{SECRET}@127.0.0.1:{b.port}/{db}",
        f"postgresql://{b.user}@127.0.0.1:{b.port}/{db}?password={SECRET}",
    ]
    for n, form in enumerate(forms):
        args = ["--database-url", form]
        outputs = [invoke(*args, "migrate", "--to", "10" if n == 0 else "20" if n == 1 else "30"),
                   invoke(*args, "status", "--json"), invoke(*args, "status"),
                   invoke(*args, "migrate", "--dry-run")]
        for out in outputs:
            assert out.exit_code == 0, out.output
            assert SECRET not in out.output, f"{form!r} printed its password:\n{out.output}"
    assert applied(scratch_db) == [10, 20, 30]


@pytest.mark.parametrize("url", [
    f"host=127.0.0.1 port=1 dbname=nothing user=u password={SECRET}",
    f"postgresql://u@127.0.0.1:1/nothing?password={SECRET}",
    f"postgresql://u:{SECRET}@127.0.0.1:1/nothing",
    f"mysql://u:{SECRET}@127.0.0.1/nothing",
    f"host=127.0.0.1 password={SECRET} bogus",
    f"host=127.0.0.1 password={SECRET} nonsense=1",
    f"password={SECRET}x' host=127.0.0.1",
    f"postgresql://u:{SECRET}@127.0.0.1:notaport/nothing",
])
def test_no_password_is_printed_on_errors(sql_tree: Path, url: str) -> None:
    for args in (["status"], ["migrate"], ["status", "--json"], ["doctor"]):
        result = CliRunner().invoke(cli, ["--database-url", url, *args])
        assert result.exit_code != 0
        assert SECRET not in result.output and SECRET[:12] not in result.output, result.output
        assert "Traceback" not in result.output


def test_a_wrong_password_error_names_the_server_not_the_password(
        sql_tree: Path, scratch_db: str, session_bouncer: Bouncer) -> None:
    wrong = make_conninfo(session_bouncer.dsn(dbname(scratch_db)), password=SECRET + "-wrong")
    result = CliRunner().invoke(cli, ["--database-url", wrong, "migrate"])
    assert result.exit_code == 3, result.output
    assert SECRET not in result.output and "127.0.0.1" in result.output


@pytest.mark.parametrize("password", ["on", "x", "fail", "refused"])
def test_a_short_password_is_masked_as_a_field_and_never_garbles_the_message(
        sql_tree: Path, password: str) -> None:
    url = f"host=127.0.0.1 port=1 dbname=nothing user=u password={password}"
    result = CliRunner().invoke(cli, ["--database-url", url, "status"])
    assert result.exit_code == 3, result.output
    assert "Connection refused" in result.output and "***ed" not in result.output, result.output
    assert "password=***" in result.output, result.output


def test_a_wrong_short_password_reads_authentication_failed(
        sql_tree: Path, scratch_db: str, session_bouncer: Bouncer) -> None:
    wrong = make_conninfo(session_bouncer.dsn(dbname(scratch_db)), password="fail")
    result = CliRunner().invoke(cli, ["--database-url", wrong, "migrate"])
    assert result.exit_code == 3, result.output
    assert "authentication failed" in result.output, result.output
    assert "password=fail" not in result.output and "password=***" in result.output


# --- sessions named, lock waits explained, statements bounded ---------------------------------

def test_every_session_of_a_migrate_run_has_an_application_name(sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_slow.sql", "-- slow\nselect pg_sleep(1.5);\n", "select 1;\n")
    # every (pid, application, query) observed: a pid's later statements must not hide the
    # sleep it ran earlier (keeping only the latest sample per pid made this test flaky)
    seen: set[tuple[int, str, str]] = set()
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(scratch_db, autocommit=True, application_name="test watcher") as conn:
            while not done.is_set():
                for pid, app, query in conn.execute(
                        "select pid, application_name, query from pg_stat_activity "
                        "where datname = current_database() and pid <> pg_backend_pid() "
                        "and backend_type = 'client backend'"):
                    seen.add((pid, app, query))
                time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = invoke("--database-url", scratch_db, "migrate")
    finally:
        done.set()
        watcher.join()
    assert result.exit_code == 0, result.output
    apps = {app for _, app, _ in seen}
    assert any(app == "neurant-db migrate" and "pg_sleep(1.5)" in q for _, app, q in seen), seen
    assert all(app.startswith("neurant-db ") for app in apps), f"unnamed runner sessions: {apps}"
    assert len({pid for pid, _, _ in seen}) >= 3, f"expected the lock, ledger and yoyo sessions, saw {seen}"


def test_a_lock_timeout_names_the_blocking_session_and_relation(sql_tree: Path, scratch_db: str) -> None:
    assert invoke("--database-url", scratch_db, "migrate").exit_code == 0
    (sql_tree.parent / "neurant-db.toml").write_text("statement_lock_timeout_ms = 700\n")
    write(sql_tree, "schema/0040_widen.sql", "-- needs an exclusive lock\n"
          "alter table public.widgets add column note text;\n",
          "alter table public.widgets drop column note;\n")
    with psycopg.connect(scratch_db, application_name="nightly report") as holder:
        holder.execute("select count(*) from public.widgets")  # open transaction: AccessShareLock held
        pid = holder.info.backend_pid
        result = invoke("--database-url", scratch_db, "migrate")
    assert result.exit_code == 6, result.output
    assert "lock timeout" in result.output
    assert f"pid {pid}" in result.output and "nightly report" in result.output, result.output
    assert "public.widgets" in result.output, result.output
    assert applied(scratch_db) == [10, 20, 30]


def test_a_statement_timeout_bounds_each_statement_of_a_migration(sql_tree: Path, scratch_db: str) -> None:
    write(sql_tree, "schema/0040_runaway.sql", "-- runs too long\nselect pg_sleep(20);\n", "select 1;\n")
    started = time.monotonic()
    result = invoke("--database-url", scratch_db, "migrate", "--statement-timeout", "1")
    assert time.monotonic() - started < 15
    assert result.exit_code == 6, result.output
    assert "statement timeout" in result.output
    assert applied(scratch_db) == [10, 20, 30]


def test_statement_timeout_is_a_validated_setting_with_a_default() -> None:
    from neurant_db.errors import SettingsError
    from neurant_db.settings import Settings

    assert Settings().statement_timeout_ms > 0
    with pytest.raises(SettingsError):
        Settings(statement_timeout_ms=-1).validate()


def test_every_connection_the_runner_opens_names_itself() -> None:
    """The class, not the instance: a runner module that opens a session by itself (not
    through database.connect or DatabaseTarget.yoyo_uri) must pass application_name."""
    import re

    import neurant_db

    offenders = []
    for path in sorted(Path(neurant_db.__file__).parent.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"psycopg\.connect\(|get_backend\(", text):
            call = text[match.start():text.find("\n\n", match.start())]
            depth = 0
            for pos, char in enumerate(call):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0 and char == ")":
                    call = call[:pos + 1]
                    break
            if "application_name" not in call and "yoyo_uri(" not in call:
                offenders.append(f"{path.name}: {call.splitlines()[0]}")
    assert offenders == [], offenders
