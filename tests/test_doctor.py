"""`neurant-db doctor`: the migrated schema is clean, and each weakness it
exists to catch is caught (built on purpose in a scratch database)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.doctor import run_checks
from neurant_db.table_registry import REGISTRY_FILE
from neurant_db.testdb import TestDatabase

WEAK_SCHEMA = """
create role doctor_probe_role nologin;
create schema if not exists private;
create function private.get_user_company_id() returns uuid language sql stable as 'select null::uuid';
comment on function private.get_user_company_id() is 'stand-in';
create table public.companies (id uuid primary key);
comment on table public.companies is 'tenant root';
comment on column public.companies.id is 'id';
alter table public.companies enable row level security;
alter table public.companies force row level security;
create policy select_all on public.companies for select to doctor_probe_role using (true);
comment on policy select_all on public.companies is 'ok';

create table public.leaky (
  company_id uuid not null, id uuid not null, code text, parent_id uuid,
  primary key (company_id, id), unique (code)
);
alter table public.leaky enable row level security;
create policy per_row on public.leaky using (company_id = private.get_user_company_id());
create table public.child (
  company_id uuid, id uuid primary key, leaky_id uuid,
  foreign key (company_id, leaky_id) references public.leaky (company_id, id)
    on update cascade on delete set null
);
create table public.crossref (
  company_id uuid not null, id uuid not null, leaky_id uuid,
  primary key (company_id, id)
);
alter table public.crossref add foreign key (company_id, leaky_id) references public.leaky (company_id, id)
  on delete cascade;
alter table public.crossref add column other_company uuid;
create unique index crossref_other_key on public.crossref (id);
create function public.definer_no_path() returns int language sql security definer as 'select 1';
create view public.owner_view as select 1 as one;
create type public.mood as enum ('ok', 'not ok');
create function public.noop_trigger() returns trigger language plpgsql as 'begin return new; end';
comment on function public.noop_trigger() is 'stand-in';
create trigger leaky_noop before insert on public.leaky for each row execute function public.noop_trigger();
create function public.definer_writes() returns void language sql security definer set search_path = ''
  as 'delete from public.leaky';
create function public.definer_empty_path() returns int language sql security definer set search_path = ''
  as 'select 1';
create procedure public.job_reuses_temp() language plpgsql as $$
begin
  if to_regclass('pg_temp.scratch') is null then
    create temp table scratch (x int) on commit drop;
  end if;
  insert into pg_temp.scratch values (1);
end $$;
create function public.definer_unqualified_relation() returns bigint language plpgsql security definer
  set search_path = pg_catalog, pg_temp as $$ begin return (select count(*) from leaky); end $$;
create procedure public.job_unqualified_type() language plpgsql as $$
declare
  v_day date := pg_catalog.now()::date;
begin
  raise notice '%', v_day;
end $$;
"""


def findings_for(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return {(f.check, f.object) for f in run_checks(conn) if f.level == "error"}


def test_the_migrated_schema_has_no_doctor_errors(neurant_db: TestDatabase) -> None:
    result = CliRunner().invoke(cli, ["--database-url", neurant_db.url, "doctor", "--json"])
    errors = [f for f in json.loads(result.output) if f["level"] == "error"]
    assert errors == [], "\n".join(f"{f['check']} {f['object']}: {f['message']}" for f in errors)
    assert result.exit_code == 0


@pytest.fixture
def weak_db(scratch_db: str) -> Iterator[str]:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("drop role if exists doctor_probe_role")
        conn.execute(WEAK_SCHEMA)
    yield scratch_db
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("drop owned by doctor_probe_role; drop role doctor_probe_role")


@pytest.mark.parametrize(("check", "obj"), [
    ("rls.forced", "public.leaky"),
    ("rls.enabled", "public.child"),
    ("rls.policy", "public.child"),
    ("policy.roles", "public.leaky.per_row"),
    ("policy.initplan", "public.leaky.per_row"),
    ("definer.search_path", "definer_no_path()"),
    ("definer.execute", "definer_no_path()"),
    ("view.invoker", "public.owner_view"),
    ("fk.index", "public.child.child_company_id_leaky_id_fkey"),
    ("comment", "public.leaky"),
    ("comment", "public.leaky.code"),
    ("comment", "public.leaky.per_row"),
    ("comment", "definer_no_path()"),
    ("comment", "public.mood"),
    ("comment", "public.leaky.leaky_noop"),
    ("tenant.not_null", "public.child"),
    ("tenant.unique", "public.leaky leaky_code_key"),
    ("tenant.unique", "public.crossref crossref_other_key"),
    ("tenant.fk_action", "public.child.child_company_id_leaky_id_fkey"),
    ("tenant.cascade", "public.leaky"),
    ("registry.table", "public.leaky"),
    ("policy.read_only", "public.leaky"),
    ("definer.read_only", "definer_writes()"),
    ("tenant.guard", "public.leaky"),
    ("tenant.guard", "public.crossref"),
    ("legal_hold.trigger", "public.leaky"),
    ("legal_hold.trigger", "public.companies"),
    ("definer.search_path", "definer_empty_path()"),
    ("trusted.temp", "job_reuses_temp()"),
    ("trusted.unqualified", "definer_unqualified_relation()"),
    ("trusted.unqualified", "job_unqualified_type()"),
])
def test_doctor_catches_each_weakness(weak_db: str, check: str, obj: str) -> None:
    assert (check, obj) in findings_for(weak_db)


def test_doctor_exits_non_zero_and_prints_one_line_per_finding(weak_db: str) -> None:
    result = CliRunner().invoke(cli, ["--database-url", weak_db, "doctor"])
    assert result.exit_code == 1
    assert "rls.forced" in result.output and "Traceback" not in result.output


def test_a_global_unique_key_the_registry_allows_is_reported_as_info(weak_db: str, sql_copy: Path) -> None:
    with (sql_copy / REGISTRY_FILE).open("a", encoding="utf-8") as registry:
        registry.write('[table."public.crossref"]\nscope = "tenant"\ncitus = "distributed"\n'
                       '[table."public.crossref".allow]\nlegal_hold = "a probe."\n'
                       '"tenant.unique crossref_other_key" = "ids are globally unique by construction"\n')
    with psycopg.connect(weak_db, autocommit=True) as conn:
        conn.execute("comment on index public.leaky_code_key is "
                     "'doctor: allow tenant.unique a comment alone exempts nothing'")
        infos = [f for f in run_checks(conn) if f.check == "tenant.unique" and f.level == "info"]
    assert ("tenant.unique", "public.crossref crossref_other_key") not in findings_for(weak_db)
    assert any("globally unique by construction" in f.message for f in infos)
    assert ("tenant.unique", "public.leaky leaky_code_key") in findings_for(weak_db)


# Hostile sessions (issue 9): time and identity a caller chooses ---------------------------
CALLER_CHOSEN = """
create schema if not exists private;
create function public.weak_email_claim() returns text language plpgsql stable as
  $$ begin return lower(auth.email()); end $$;
create function public.weak_email_jwt() returns text language plpgsql stable as
  $$ begin return auth.jwt() ->> 'email'; end $$;
create function public.weak_as_of(p_as_of timestamptz) returns bigint language sql stable as
  $$ select count(*) from pg_class where now() > p_as_of - interval '400 days' $$;
create function private.lifecycle_clock(p_as_of timestamptz) returns timestamptz language sql stable as
  $$ select least(p_as_of, now()) $$;
create function public.clamped_as_of(p_as_of timestamptz) returns bigint language sql stable as
  $$ select count(*) from pg_class
      where now() > private.lifecycle_clock(coalesce(p_as_of, now())) - interval '1 day' $$;
"""


@pytest.mark.parametrize(("check", "obj", "caught"), [
    ("identity.email_claim", "weak_email_claim()", True),
    ("identity.email_claim", "weak_email_jwt()", True),
    ("clock.as_of", "weak_as_of(timestamp with time zone)", True),
    ("clock.as_of", "clamped_as_of(timestamp with time zone)", False),
    ("clock.as_of", "private.lifecycle_clock(timestamp with time zone)", False),
])
def test_doctor_catches_caller_chosen_time_and_identity(scratch_db: str, check: str, obj: str, caught: bool) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute(CALLER_CHOSEN)
    assert ((check, obj) in findings_for(scratch_db)) is caught


def test_a_tenant_table_without_its_read_only_policy_fails_doctor(neurant_db: TestDatabase) -> None:
    """The real schema, one restrictive policy dropped inside a rolled-back transaction."""
    with psycopg.connect(neurant_db.url) as conn:
        assert ("policy.read_only", "public.chatbots") not in {
            (f.check, f.object) for f in run_checks(conn) if f.level == "error"}
        conn.execute("drop policy update_while_writable on public.chatbots")
        found = [f for f in run_checks(conn) if f.check == "policy.read_only" and f.level == "error"]
        conn.rollback()
    assert [(f.object, "update" in f.message) for f in found] == [("public.chatbots", True)]


def test_write_policies_that_and_the_read_only_check_pass_doctor_without_restrictive_policies(
        neurant_db: TestDatabase) -> None:
    """Profile citus's shape (no policy may be restrictive there: runner/neurant_db/citus_render.py)
    on the real schema, inside a rolled-back transaction: the three restrictive policies of
    chatbots dropped and the check ANDed into its write policies passes; one write policy
    without it fails, named; one ORing it in fails too."""
    check = "private.require_company_writable()"
    admin = ("company_id = (select private.get_user_company_id()) "
             "and (select private.get_user_role()) in ('owner', 'administrador')")
    with psycopg.connect(neurant_db.url) as conn:
        for command in ("insert", "update", "delete"):
            conn.execute(f"drop policy {command}_while_writable on public.chatbots")
        conn.execute(f"alter policy insert_as_admin on public.chatbots with check (({admin}) and {check})")
        conn.execute(f"alter policy update_as_admin on public.chatbots using (({admin}) and {check}) "
                     f"with check (({admin}) and {check})")
        conn.execute(f"alter policy delete_as_admin on public.chatbots using (({admin}) and {check})")

        def read_only_findings() -> list[str]:
            return [f.message for f in run_checks(conn) if f.check == "policy.read_only" and f.level == "error"
                    and f.object == "public.chatbots"]
        folded = read_only_findings()
        conn.execute(f"alter policy update_as_admin on public.chatbots using ({admin})")
        update_unguarded = read_only_findings()
        conn.execute(f"alter policy update_as_admin on public.chatbots using (({admin}) or {check})")
        update_ored = read_only_findings()
        conn.rollback()
    assert folded == []
    assert [("update (admitted by update_as_admin)" in m, "insert" in m, "delete" in m)
            for m in update_unguarded + update_ored] == [(True, False, False)] * 2


def test_a_write_rpc_without_the_read_only_check_fails_doctor(neurant_db: TestDatabase) -> None:
    with psycopg.connect(neurant_db.url) as conn:
        conn.execute("""
            create or replace function public.revoke_invitation(p_invitation_id uuid) returns void
              language sql security definer set search_path = ''
              as 'update public.user_invitations set status = ''revoked'' where id = p_invitation_id'""")
        found = [f.object for f in run_checks(conn) if f.check == "definer.read_only" and f.level == "error"]
        conn.rollback()
    assert found == ["revoke_invitation(uuid)"]  # delete_rows calls the check (functions/0350)


HALF_GUARDED = """
create schema if not exists private;
create function private.reject_other_tenant_insert() returns trigger language plpgsql as 'begin return new; end';
create function private.legal_hold_guard() returns trigger language plpgsql as 'begin return old; end';
create table public.half_guarded (company_id uuid not null, id uuid not null, primary key (company_id, id));
create trigger half_guarded_0_tenant_guard before insert on public.half_guarded
  for each row execute function private.reject_other_tenant_insert();
create trigger half_guarded_legal_hold before delete on public.half_guarded
  for each row execute function private.legal_hold_guard('company');
create table public.fully_guarded (company_id uuid not null, id uuid not null, primary key (company_id, id));
create trigger fully_guarded_0_tenant_guard before insert or update on public.fully_guarded
  for each row execute function private.reject_other_tenant_insert();
create trigger fully_guarded_legal_hold before update or delete on public.fully_guarded
  for each row execute function private.legal_hold_guard('company');
create trigger fully_guarded_legal_hold_truncate before truncate on public.fully_guarded
  for each statement execute function private.legal_hold_guard('company');
create table public.bookkeeping (company_id uuid not null, id uuid not null, primary key (company_id, id));
comment on table public.bookkeeping is 'Counters. doctor: allow legal_hold (a comment alone exempts nothing).';
"""
# The exception is the registry's (schema/_tables.toml), not the comment's.
BOOKKEEPING = """
[table."public.bookkeeping"]
scope = "tenant"
citus = "distributed"
[table."public.bookkeeping".allow]
legal_hold = "quota counters, not a record."
"""


def test_a_tenant_table_guarded_on_insert_only_or_without_truncate_block_is_caught(
        weak_db: str, sql_copy: Path) -> None:
    with (sql_copy / REGISTRY_FILE).open("a", encoding="utf-8") as registry:
        registry.write(BOOKKEEPING)
    with psycopg.connect(weak_db, autocommit=True) as conn:
        conn.execute(HALF_GUARDED)
        found = {(f.check, f.object, f.level) for f in run_checks(conn)}
    assert ("tenant.guard", "public.half_guarded", "error") in found
    assert ("legal_hold.trigger", "public.half_guarded", "error") in found
    assert not {(c, o) for c, o, _level in found if o == "public.fully_guarded"} & {
        ("tenant.guard", "public.fully_guarded"), ("legal_hold.trigger", "public.fully_guarded")}
    assert ("legal_hold.trigger", "public.bookkeeping", "info") in found
    assert ("registry.table", "public.bookkeeping", "error") not in found
    assert ("legal_hold.trigger", "public.half_guarded", "error") in found
    assert ("legal_hold.trigger", "public.bookkeeping", "error") not in found
    assert ("tenant.guard", "public.bookkeeping", "error") in found


SPLIT_GUARDS = """
create schema if not exists private;
create function private.reject_other_tenant_insert() returns trigger language plpgsql as 'begin return new; end';
create table public.split_guarded (company_id uuid not null, id uuid not null, primary key (company_id, id));
create trigger split_guarded_0_tenant_guard before insert on public.split_guarded
  for each row when (pg_catalog.row_security_active('public.split_guarded'::regclass))
  execute function private.reject_other_tenant_insert();
create trigger split_guarded_0_tenant_key before update on public.split_guarded
  for each row when (new.company_id is distinct from old.company_id)
  execute function private.reject_other_tenant_insert();
create table public.never_guarded (company_id uuid not null, id uuid not null, primary key (company_id, id));
create trigger never_guarded_0_tenant_guard before insert or update on public.never_guarded
  for each row when (false) execute function private.reject_other_tenant_insert();
create table public.other_table_guarded (company_id uuid not null, id uuid not null, primary key (company_id, id));
create trigger other_table_guarded_0_tenant_guard before insert on public.other_table_guarded
  for each row when (pg_catalog.row_security_active('public.split_guarded'::regclass))
  execute function private.reject_other_tenant_insert();
create trigger other_table_guarded_0_tenant_key before update on public.other_table_guarded
  for each row when (new.company_id is distinct from old.company_id)
  execute function private.reject_other_tenant_insert();
create table public.key_of_some_updates (company_id uuid not null, id uuid not null, primary key (company_id, id));
create trigger key_of_some_updates_0_tenant_guard before insert on public.key_of_some_updates
  for each row when (pg_catalog.row_security_active('public.key_of_some_updates'::regclass))
  execute function private.reject_other_tenant_insert();
create trigger key_of_some_updates_0_tenant_key before update on public.key_of_some_updates
  for each row when (new.company_id is distinct from old.company_id and new.id = old.id)
  execute function private.reject_other_tenant_insert();
"""


def test_a_tenant_guard_may_skip_only_what_the_function_itself_skips(weak_db: str) -> None:
    """The guard's triggers may carry a WHEN clause (the server then calls nothing for a
    backend write or an update that leaves company_id alone), but only the function's own
    first tests: any other condition - false, another table's RLS, an extra term - could
    let a row through, and doctor reports the table unguarded."""
    with psycopg.connect(weak_db, autocommit=True) as conn:
        conn.execute(SPLIT_GUARDS)
        found = {(f.check, f.object) for f in run_checks(conn) if f.level == "error"}
    assert ("tenant.guard", "public.split_guarded") not in found
    assert ("tenant.guard", "public.never_guarded") in found
    assert ("tenant.guard", "public.other_table_guarded") in found
    assert ("tenant.guard", "public.key_of_some_updates") in found


SETTING_PROBES = """
create schema if not exists private;
create function private.trusts_a_setting() returns boolean language sql stable
  as $$ select current_setting('neurant.hitl_reason', true) = 'keyword' $$;
comment on function private.trusts_a_setting() is 'deliberately broken: decides on a custom setting';
create function private.trusts_trigger_depth() returns boolean language sql stable
  as $$ select pg_trigger_depth() > 1 $$;
comment on function private.trusts_trigger_depth() is 'deliberately broken: decides on the trigger depth';
create function private.reads_a_setting_named_at_run_time(p text) returns text language sql stable
  as $$ select current_setting(p, true) $$;
comment on function private.reads_a_setting_named_at_run_time(text) is 'deliberately broken: setting named at run time';
create function private.reads_the_jwt() returns text language sql stable set search_path = pg_catalog, pg_temp
  as $$ select current_setting('request.jwt.claims', true) $$;
comment on function private.reads_the_jwt() is 'the JWT claims are trusted';
create function private.reads_a_knob() returns text language sql stable set search_path = pg_catalog, pg_temp
  as $$ select current_setting('work_mem') -- doctor: allow setting.read work_mem reported only
  $$;
comment on function private.reads_a_knob() is 'documented read';
"""


@pytest.fixture
def settings_db(scratch_db: str) -> Iterator[str]:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute(SETTING_PROBES)
    yield scratch_db


@pytest.mark.parametrize(("check", "obj"), [
    ("setting.read", "private.trusts_a_setting() neurant.hitl_reason"),
    ("setting.read", "private.reads_a_setting_named_at_run_time(text) *"),
    ("trigger.depth", "private.trusts_trigger_depth()"),
])
def test_doctor_flags_decisions_on_client_settable_state(settings_db: str, check: str, obj: str) -> None:
    assert (check, obj) in findings_for(settings_db)


def test_jwt_claims_and_documented_setting_reads_are_not_errors(settings_db: str) -> None:
    errors = findings_for(settings_db)
    assert not any(obj.startswith(("private.reads_the_jwt()", "private.reads_a_knob()")) for _c, obj in errors)
    with psycopg.connect(settings_db) as conn:
        infos = {(f.check, f.object) for f in run_checks(conn) if f.level == "info"}
    assert ("setting.read", "private.reads_a_knob() work_mem") in infos


def test_an_invalid_index_left_by_a_failed_concurrent_build_fails_doctor(neurant_db: TestDatabase) -> None:
    """The real schema plus a table whose CREATE UNIQUE INDEX CONCURRENTLY failed on duplicates."""
    with psycopg.connect(neurant_db.url, autocommit=True) as conn:
        conn.execute("create table private.doctor_dupes (id int primary key, code text)")
        try:
            conn.execute("insert into private.doctor_dupes values (1, 'a'), (2, 'a')")
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute("create unique index concurrently doctor_dupes_code_key on private.doctor_dupes (code)")
            conn.execute("create index doctor_dupes_id_code_idx on private.doctor_dupes (id, code)")
            found = {(f.check, f.object): f.message for f in run_checks(conn) if f.level == "error"}
        finally:
            conn.execute("drop table private.doctor_dupes")
    assert "drop index concurrently if exists private.doctor_dupes_code_key;" in \
        found[("index.invalid", "private.doctor_dupes_code_key")]
    assert ("index.invalid", "private.doctor_dupes_id_code_idx") not in found


def test_a_comment_alone_does_not_exempt_a_table_from_legal_holds(weak_db: str) -> None:
    """Without a registry entry, `doctor: allow legal_hold` in a comment changes nothing:
    the registry is the one place a table's exception is declared."""
    with psycopg.connect(weak_db, autocommit=True) as conn:
        conn.execute(HALF_GUARDED)
        found = {(f.check, f.object, f.level) for f in run_checks(conn)}
    assert ("legal_hold.trigger", "public.bookkeeping", "error") in found
    assert ("registry.table", "public.bookkeeping", "error") in found


def test_a_table_whose_tenant_key_contradicts_its_registry_scope_fails_doctor(scratch_db: str) -> None:
    """schema/_tables.toml says subscription_plans is global and legal_holds a tenant table:
    a catalog that disagrees is an error, naming the registry."""
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("create table public.companies (id uuid primary key)")
        conn.execute("create table public.subscription_plans (id uuid primary key, company_id uuid)")
        conn.execute("create table public.legal_holds (id uuid primary key)")
        found = {f.object: f.message for f in run_checks(conn)
                 if f.check == "registry.table" and f.level == "error"}
    assert "says scope = \"global\" but the table has a company_id column" in found["public.subscription_plans"]
    assert "says scope = \"tenant\" but the table has no company_id column" in found["public.legal_holds"]


def test_a_registered_audited_table_without_its_audit_trigger_fails_doctor(neurant_db: TestDatabase) -> None:
    """The real schema, chatbots' audit trigger dropped inside a rolled-back transaction."""
    with psycopg.connect(neurant_db.url) as conn:
        assert ("audit.trigger", "public.chatbots") not in {
            (f.check, f.object) for f in run_checks(conn) if f.level == "error"}
        conn.execute("drop trigger chatbots_audit on public.chatbots")
        found = [f.object for f in run_checks(conn) if f.check == "audit.trigger" and f.level == "error"]
        conn.rollback()
    assert found == ["public.chatbots"]


def test_a_legal_hold_trigger_freeing_columns_the_registry_does_not_fails_doctor(neurant_db: TestDatabase) -> None:
    """The real schema, messages' hold trigger recreated with content freed, rolled back."""
    with psycopg.connect(neurant_db.url) as conn:
        assert ("legal_hold.mapping", "public.messages") not in {
            (f.check, f.object) for f in run_checks(conn) if f.level == "error"}
        conn.execute("drop trigger messages_legal_hold on public.messages")
        conn.execute("create trigger messages_legal_hold before update or delete on public.messages "
                     "for each row execute function private.legal_hold_guard('conversation_id', 'content')")
        found = [f.message for f in run_checks(conn) if f.check == "legal_hold.mapping" and f.level == "error"]
        conn.rollback()
    assert found == ["messages_legal_hold runs private.legal_hold_guard(conversation_id, content), "
                     "schema/_tables.toml says (conversation_id)"]


def test_a_table_or_sequence_open_to_client_roles_outside_the_registry_fails_doctor(neurant_db: TestDatabase) -> None:
    """A table created outside the migrations with Supabase's default grants (anon=arwdDxt,
    its identity sequence anon=rwU), and a registered sequence granted back to anon: errors."""
    with psycopg.connect(neurant_db.url) as conn:
        assert not [f for f in run_checks(conn) if f.check.startswith("grant.") and f.level == "error"]
        conn.execute("create table public.rogue (id bigint generated always as identity primary key)")
        conn.execute("grant all on table public.rogue to anon")
        conn.execute("grant all on sequence public.rogue_id_seq, public.system_metrics_id_seq to anon")
        conn.execute("grant select, truncate on table public.chatbots to authenticated")  # select: registered
        found = {(f.check, f.object) for f in run_checks(conn) if f.check.startswith("grant.") and f.level == "error"}
        conn.rollback()
    # (on a Supabase template its default privileges open public.rogue to authenticated too)
    supabase_defaults = {("grant.table", "public.rogue authenticated"),
                         ("grant.sequence", "public.rogue_id_seq authenticated")}
    assert found - supabase_defaults == {
        ("grant.table", "public.rogue anon"), ("grant.sequence", "public.rogue_id_seq anon"),
        ("grant.sequence", "public.system_metrics_id_seq anon"), ("grant.table", "public.chatbots authenticated")}


def test_a_table_whose_delete_triggers_keep_state_without_a_truncate_refusal_fails_doctor(
        neurant_db: TestDatabase) -> None:
    """The doctor check trigger.truncate of the truncate-refused rule (issue 20, item 6)."""
    with psycopg.connect(neurant_db.url) as conn:
        assert [f for f in run_checks(conn) if f.check == "trigger.truncate"] == []
        conn.execute("drop trigger chatbot_operators_truncate_refused on public.chatbot_operators")
        found = [(f.level, f.object) for f in run_checks(conn) if f.check == "trigger.truncate"]
        conn.rollback()
    assert found == [("error", "public.chatbot_operators")]


def test_settings_and_a_password_a_request_role_gave_itself_are_reported_with_their_undo(
        neurant_db: TestDatabase) -> None:
    """Issue 20, item 2: a request role alters itself (PostgreSQL allows it); doctor names
    each such setting and password with the statement that undoes it, and the undo works."""
    def found(conn: psycopg.Connection) -> set[tuple[str, str, str]]:
        return {(f.check, f.object, f.hint) for f in run_checks(conn)
                if f.level == "error" and f.check in ("role.setting", "role.password")}

    with psycopg.connect(neurant_db.url) as conn:  # one transaction, rolled back: no other test sees it
        assert found(conn) == set()
        db = conn.execute("select current_database()").fetchone()
        assert db is not None
        conn.execute("set role authenticated")
        conn.execute("alter role authenticated set default_transaction_read_only = on")
        conn.execute("alter role authenticated password 'chosen by a session'")
        conn.execute("reset role")
        conn.execute(f'alter role anon in database "{db[0]}" set lock_timeout = 0')
        reported = found(conn)
        for _check, _role, hint in reported:
            conn.execute(hint.split(": ", 1)[1])
        after = found(conn)
        conn.rollback()
    assert reported == {
        ("role.setting", "authenticated", "Undo it (as a superuser or a role with CREATEROLE): "
                                          "alter role authenticated reset default_transaction_read_only;"),
        ("role.setting", "anon", "Undo it (as a superuser or a role with CREATEROLE): "
                                 f"alter role anon in database \"{db[0]}\" set lock_timeout = '2s';"),
        ("role.password", "authenticated", "Remove it (as a superuser): alter role authenticated password null;"),
    }
    assert after == set()


def test_a_function_without_a_fixed_search_path_fails_doctor_unless_its_comment_says_why(
        neurant_db: TestDatabase) -> None:
    """Issue 20, item 8: the equivalent of Supabase's function_search_path_mutable."""
    with psycopg.connect(neurant_db.url) as conn:
        assert [f for f in run_checks(conn) if f.check == "function.search_path" and f.level == "error"] == []
        conn.execute("alter function public.role_rank(public.user_role) reset search_path")
        found = [(f.level, f.object) for f in run_checks(conn) if f.check == "function.search_path"
                 and f.object.startswith("role_rank")]
        conn.execute("comment on function public.role_rank(public.user_role) is"
                     " 'doctor: allow function.search_path a reason'")
        allowed = [(f.level, f.object) for f in run_checks(conn) if f.check == "function.search_path"
                   and f.object.startswith("role_rank")]
        conn.rollback()
    assert found == [("error", "role_rank(user_role)")]
    assert allowed == [("info", "role_rank(user_role)")]


def test_two_permissive_policies_for_one_role_and_command_are_flagged_unless_explained(
        neurant_db: TestDatabase) -> None:
    """Issue 20, item 8: the equivalent of Supabase's multiple_permissive_policies."""
    with psycopg.connect(neurant_db.url) as conn:
        before = {(f.level, f.object) for f in run_checks(conn) if f.check == "policy.permissive_overlap"}
        conn.execute("create policy select_again on public.chatbots for select to authenticated using (false)")
        conn.execute("comment on policy select_again on public.chatbots is 'a probe'")
        after = {(f.level, f.object) for f in run_checks(conn) if f.check == "policy.permissive_overlap"}
        conn.rollback()
    assert before == {("info", "public.subscription_plans select authenticated"),
                      ("info", "public.users update authenticated")}
    assert after - before == {("warning", "public.chatbots select authenticated")}


def test_a_tenant_keyed_table_without_a_companies_table_is_a_finding_not_a_database_error(scratch_db: str) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("create table public.things (id int primary key, company_id uuid not null)")
    assert ("tenant.cascade", "public.things") in findings_for(scratch_db)


EXPOSED_RPCS = {"accept_invitation(text)", "clear_integration_credentials(uuid)",
                "create_company_with_owner(text,text,text,text)", "create_invitation(text,user_role)",
                "revoke_invitation(uuid)", "set_integration_credentials(uuid,bytea,text)",
                "transfer_ownership(uuid)"}


def test_a_definer_function_the_data_api_serves_fails_doctor_unless_its_comment_says_it_is_an_rpc(
        neurant_db: TestDatabase) -> None:
    """Issue 20, item 8: the equivalent of Supabase's authenticated_security_definer_function_executable.
    The definer RPCs stay in public on purpose (info); a policy helper moved back into public, or
    private exposed through PostgREST's pgrst.db_schemas, is an error."""
    def exposed(conn: psycopg.Connection) -> set[tuple[str, str]]:
        return {(f.level, f.object) for f in run_checks(conn) if f.check == "definer.exposed"}

    with psycopg.connect(neurant_db.url) as conn:
        migrated = exposed(conn)
        conn.execute("alter function private.get_user_role() set schema public")
        helper_in_public = exposed(conn) - migrated
        conn.execute("comment on function public.get_user_role() is"
                     " 'a probe. doctor: allow definer.exposed a reason'")
        helper_allowed = exposed(conn) - migrated
        conn.rollback()
        db = conn.execute("select current_database()").fetchone()
        assert db is not None
        conn.execute(f"alter role authenticated in database \"{db[0]}\" set pgrst.db_schemas = 'public, private'")
        private_exposed = exposed(conn) - migrated
        conn.rollback()
    assert migrated == {("info", sig) for sig in EXPOSED_RPCS}
    assert helper_in_public == {("error", "get_user_role()")}
    assert helper_allowed == {("info", "get_user_role()")}
    assert {("error", "private.get_user_company_id()"), ("error", "private.get_visible_chatbot_ids()"),
            ("error", "private.delete_rows(text,jsonb)")} <= private_exposed
