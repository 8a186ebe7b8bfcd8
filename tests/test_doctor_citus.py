"""`neurant-db doctor --profile citus`: each Citus restriction of issue 12 is a static rule,
proven by a deliberately broken object and passed by its fixed twin (a scratch database
whose placements come from private.citus_layout), and the rules find the problems a real
Citus reported on the vanilla schema."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.citus_layout import layout_source, table_layout
from neurant_db.cli import cli
from neurant_db.doctor import run_checks
from neurant_db.doctor_finding import Finding
from neurant_db.testdb import TestDatabase

PROBE_ROLES = ("citus_probe_nologin", "citus_probe_login")

# Broken objects are named *_broken / broken_*, their fixed twins *_fixed / fixed_*.
CITUS_SCHEMA = """
create schema private;
create schema auth;
create role citus_probe_nologin nologin;
create role citus_probe_login login;
create function auth.uid() returns uuid language sql stable as 'select null::uuid';

create table public.plans (code text primary key);
create table public.companies (id uuid primary key, plan text references public.plans (code) on delete restrict);
create table public.members (
  company_id uuid not null, id uuid not null, auth_user_id uuid, email text,
  primary key (company_id, id),
  constraint members_broken_key unique (auth_user_id),
  constraint members_fixed_key unique (company_id, email),
  constraint members_company_broken_fkey foreign key (company_id) references public.companies (id)
    on update cascade on delete cascade
);
create table public.memberships (auth_user_id uuid primary key, company_id uuid not null,
  constraint memberships_company_broken_fkey foreign key (company_id) references public.companies (id)
    on delete cascade);
create table public.notes (
  company_id uuid not null, id uuid not null default gen_random_uuid(), body text,
  during tstzrange, created_at timestamptz not null default now(),
  primary key (company_id, id), unique (id, company_id),
  constraint notes_company_fixed_fkey foreign key (company_id) references public.companies (id) on delete cascade,
  constraint notes_broken_excl exclude using gist (during with &&)
);
create table public.audit (
  company_id uuid not null, id bigint generated always as identity, note_id uuid, what text,
  primary key (company_id, id),
  constraint audit_note_fixed_fkey foreign key (company_id, note_id) references public.notes (company_id, id)
    on delete cascade,
  constraint audit_note_swapped_broken_fkey foreign key (company_id, note_id) references public.notes (id, company_id)
    on delete cascade,
  constraint audit_note_set_null_broken_fkey foreign key (company_id, note_id) references public.notes (company_id, id)
    on delete set null
);
create table public.ref_log (id bigint generated always as identity primary key, what text);
create table public.local_things (id int primary key, note_company uuid, note_id uuid,
  constraint local_things_note_broken_fkey foreign key (note_company, note_id)
    references public.notes (company_id, id) on delete cascade);

-- a local table (not in the layout) that a distributed table references, as companies ->
-- auth.users would if auth.users were not a reference table
create table auth.identities (id uuid primary key);
alter table public.companies add column created_by uuid,
  add constraint companies_created_by_broken_fkey foreign key (created_by) references auth.identities (id)
    on delete restrict;

create table private.citus_layout (
  relation regclass primary key,
  placement text not null check (placement in ('reference', 'distributed')),
  distribution_column name, colocate_with regclass, position integer not null unique);
insert into private.citus_layout values
  ('public.plans', 'reference', null, null, 1),
  ('public.memberships', 'reference', null, null, 2),
  ('public.ref_log', 'reference', null, null, 3),
  ('public.companies', 'distributed', 'id', null, 4),
  ('public.members', 'distributed', 'company_id', 'public.companies', 5),
  ('public.notes', 'distributed', 'company_id', 'public.companies', 6),
  ('public.audit', 'distributed', 'company_id', 'public.companies', 7);

-- context helpers called by policies
create function public.company_broken() returns uuid language sql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$ select m.company_id from public.members m where m.auth_user_id = auth.uid() $$;
create function public.company_no_setting_broken() returns uuid language sql stable security definer
  set search_path = pg_catalog, pg_temp
  as $$ select m.company_id from public.memberships m where m.auth_user_id = auth.uid() $$;
create function private.membership_lookup() returns uuid language sql stable
  as $$ select m.company_id from public.memberships m where m.auth_user_id = auth.uid() $$;
create function public.company_fixed() returns uuid language sql stable security definer
  set search_path = pg_catalog, pg_temp set citus.allow_nested_distributed_execution = on
  as $$ select private.membership_lookup() $$;

create function public.company_distributed_nested() returns uuid language sql stable security definer
  set search_path = pg_catalog, pg_temp set citus.allow_nested_distributed_execution = on
  as $$ select m.company_id from public.members m where m.auth_user_id = auth.uid() $$;

create policy insert_slow on public.notes for insert to citus_probe_login
  with check (company_id = public.company_distributed_nested());
create policy select_subquery_broken on public.notes for select to citus_probe_login
  using (company_id = (select public.company_broken()));
create policy update_no_setting_broken on public.notes for update to citus_probe_login
  using (company_id = public.company_no_setting_broken());
create policy delete_fixed on public.notes for delete to citus_probe_login
  using (company_id = public.company_fixed());
create policy delete_restrictive_broken on public.notes as restrictive for delete to citus_probe_login
  using (company_id = public.company_fixed());
create policy select_exists_broken on public.notes for select to citus_probe_login
  using (exists (select 1 from public.members m where m.company_id = notes.company_id));
create policy select_in_broken on public.plans for select to citus_probe_login
  using (code in (select c.plan from public.companies c));
create policy select_nologin_broken on public.plans for select to citus_probe_nologin using (true);
create policy select_login_fixed on public.plans for select to citus_probe_login using (true);

-- triggers of a distributed table
create function private.audit_broken() returns trigger language plpgsql as $$
begin
  insert into public.audit (company_id, what) values (new.company_id, (select tg_table_name));
  return null;
end $$;
create function private.audit_fixed() returns trigger language plpgsql as $$
begin
  -- the audited table is the trigger argument, never tg_table_name (the shard's name on Citus)
  insert into public.audit (company_id, what) select new.company_id, tg_argv[0];
  return null;
end $$;
create function private.write_ref_log_broken(p_what text) returns void language sql
  as $$ insert into public.ref_log (what) select p_what $$;
create function private.log_broken() returns trigger language plpgsql as $$
begin
  perform private.write_ref_log_broken('note');
  return null;
end $$;
create trigger notes_audit_broken after insert on public.notes
  for each row execute function private.audit_broken();
create trigger notes_audit_fixed after insert on public.notes
  for each row execute function private.audit_fixed('public.notes');
create trigger notes_log_broken after insert on public.notes
  for each row execute function private.log_broken();

-- a trigger of a reference table
create function private.touch_plan() returns trigger language plpgsql as $$
begin
  return new;
end $$;
create trigger plans_touch_broken before update on public.plans
  for each row execute function private.touch_plan();

grant insert (company_id, body) on public.notes to citus_probe_login;
grant insert on public.members to citus_probe_login;
"""


def citus_findings(url: str) -> list[Finding]:
    with psycopg.connect(url) as conn:
        return [f for f in run_checks(conn, "citus") if f.check.startswith("citus.")]


def errors(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.check, f.object) for f in findings if f.level == "error"}


def _drop_probe_roles(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for role in PROBE_ROLES:
            if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                conn.execute(f"drop owned by {role}; drop role {role}")


@pytest.fixture
def citus_db(scratch_db: str) -> Iterator[str]:
    _drop_probe_roles(scratch_db)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute(CITUS_SCHEMA)
    yield scratch_db
    _drop_probe_roles(scratch_db)


@pytest.fixture
def citus_found(citus_db: str) -> list[Finding]:
    return citus_findings(citus_db)


@pytest.mark.parametrize(("check", "obj"), [
    ("citus.policy_subquery", "public.notes.select_subquery_broken"),
    ("citus.policy_subquery", "public.notes.select_exists_broken"),
    ("citus.policy_subquery", "public.plans.select_in_broken"),
    ("citus.policy_reads_distributed", "company_broken()"),
    ("citus.policy_nested_execution", "company_no_setting_broken()"),
    ("citus.policy_restrictive", "public.notes.delete_restrictive_broken"),
    ("citus.unsafe_triggers", "public.notes"),
    ("citus.unsafe_triggers", "public.plans"),
    ("citus.trigger_table_name", "private.audit_broken()"),
    ("citus.trigger_writes_reference", "private.write_ref_log_broken(text)"),
    ("citus.insert_values_subquery", "private.audit_broken()"),
    ("citus.unique_key", "public.members members_broken_key"),
    ("citus.unique_key", "public.notes notes_broken_excl"),
    ("citus.fk_placement", "public.memberships.memberships_company_broken_fkey"),
    ("citus.fk_placement", "public.local_things.local_things_note_broken_fkey"),
    ("citus.fk_placement", "public.companies.companies_created_by_broken_fkey"),
    ("citus.fk_distribution_column", "public.audit.audit_note_swapped_broken_fkey"),
    ("citus.fk_action", "public.members.members_company_broken_fkey"),
    ("citus.fk_action", "public.audit.audit_note_set_null_broken_fkey"),
    ("citus.nologin_role", "citus_probe_nologin"),
    ("citus.insert_grant_defaults", "public.notes citus_probe_login"),
])
def test_each_citus_restriction_is_caught_by_a_rule(citus_found: list[Finding], check: str, obj: str) -> None:
    found = [f for f in citus_found if (f.check, f.object) == (check, obj) and f.level == "error"]
    assert found, f"{check} {obj} not reported"
    assert all(f.hint and f.hint[0].isupper() and f.hint.endswith(".") for f in found)


def test_the_fixed_twins_pass_every_citus_rule(citus_found: list[Finding]) -> None:
    reported = {obj for _check, obj in errors(citus_found)}
    fixed = [obj for obj in reported if "fixed" in obj or "membership_lookup" in obj]
    assert fixed == []
    assert "citus_probe_login" not in reported
    assert not any(obj.startswith("public.members ") for obj in reported if "broken" not in obj)
    assert ("citus.fk_placement", "public.companies.companies_plan_fkey") not in errors(citus_found)


def test_a_policy_helper_reading_a_distributed_table_with_nested_execution_is_a_warning(
        citus_found: list[Finding]) -> None:
    levels = {f.level for f in citus_found
              if (f.check, f.object) == ("citus.policy_reads_distributed", "company_distributed_nested()")}
    assert levels == {"warning"}
    assert not any(f.object == "company_distributed_nested()" and f.check == "citus.policy_nested_execution"
                   for f in citus_found)


def test_a_nologin_role_or_tg_table_name_declared_in_a_comment_is_info_other_rules_cannot_be_waived(
        citus_db: str) -> None:
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute("comment on role citus_probe_nologin is "
                     "'doctor: allow citus.nologin_role requests log in as citus_probe_login'")
        conn.execute("comment on function private.audit_broken() is "
                     "'doctor: allow citus.trigger_table_name only in a message; "
                     "doctor: allow citus.insert_values_subquery not a decision'")
    found = citus_findings(citus_db)
    infos = {(f.check, f.object): f.message for f in found if f.level == "info"}
    assert "requests log in as citus_probe_login" in infos[("citus.nologin_role", "citus_probe_nologin")]
    assert ("citus.trigger_table_name", "private.audit_broken()") in infos
    assert ("citus.insert_values_subquery", "private.audit_broken()") in errors(found)
    assert ("citus.nologin_role", "citus_probe_nologin") not in errors(found)


def test_a_table_missing_from_the_layout_is_reported_as_staying_local(citus_found: list[Finding]) -> None:
    warned = {(f.check, f.object) for f in citus_found if f.level == "warning"}
    assert ("citus.layout", "public.local_things") in warned
    assert ("citus.layout", "private.citus_layout") not in warned


def test_unsafe_triggers_pass_once_the_database_enables_them(citus_db: str) -> None:
    with psycopg.connect(citus_db, autocommit=True) as conn:
        name = conn.execute("select current_database()").fetchone()
        assert name
        conn.execute(f'alter database "{name[0]}" set citus.enable_unsafe_triggers = on')
    assert ("citus.unsafe_triggers", "public.notes") not in errors(citus_findings(citus_db))


def test_the_layout_comes_from_private_citus_layout_when_it_exists(citus_db: str) -> None:
    with psycopg.connect(citus_db) as conn:
        assert layout_source(conn) == "private.citus_layout"
        layout = {p.relation: (p.placement, p.distribution_column, p.colocate_with, p.position)
                  for p in table_layout(conn)}
    assert layout["public.plans"] == ("reference", None, None, 1)
    assert layout["public.companies"] == ("distributed", "id", None, 4)
    assert layout["public.notes"] == ("distributed", "company_id", "public.companies", 6)
    assert layout["public.local_things"][0] == "local"
    assert [r for r, v in layout.items() if v[3] is not None] == [
        "public.plans", "public.memberships", "public.ref_log", "public.companies", "public.members",
        "public.notes", "public.audit"]


DEFAULT_PLAN = """
create schema other;
create table public.companies (id uuid primary key);
create table public.tenant_things (company_id uuid not null, id uuid not null, primary key (company_id, id));
create table public.global_things (code text primary key);
create table other.elsewhere (id int primary key);
"""


def test_without_a_layout_tenant_tables_are_distributed_and_the_others_reference(scratch_db: str) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute(DEFAULT_PLAN)
        assert layout_source(conn) == "default"
        layout = {p.relation: (p.placement, p.distribution_column, p.colocate_with) for p in table_layout(conn)}
    assert layout == {
        "public.global_things": ("reference", None, None),
        "public.companies": ("distributed", "id", None),
        "public.tenant_things": ("distributed", "company_id", "public.companies"),
        "other.elsewhere": ("local", None, None),
    }


def test_on_citus_the_layout_comes_from_pg_dist_partition(scratch_db: str) -> None:
    """A stand-in pg_catalog.pg_dist_partition of Citus's shape (logicalrelid, partmethod,
    partkey as the column's Var node text, colocationid, repmodel): this proves how the
    catalog is read, not that a real Citus fills it this way (Citus is not installable here)."""
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute(DEFAULT_PLAN)
        conn.execute("create schema private; create table private.citus_layout (relation regclass)")
        conn.execute("set allow_system_table_mods = on")
        conn.execute("""create table pg_catalog.pg_dist_partition (logicalrelid regclass, partmethod "char",
                          partkey text, colocationid integer, repmodel "char")""")
        conn.execute("""insert into pg_catalog.pg_dist_partition values
          ('public.companies', 'h', '{VAR :varno 1 :varattno 1 :vartype 2950}', 7, 's'),
          ('public.tenant_things', 'h', '{VAR :varno 1 :varattno 1 :vartype 2950}', 7, 's'),
          ('public.global_things', 'n', null, 3, 't'),
          ('other.elsewhere', 'n', null, 0, 's')""")
        try:
            assert layout_source(conn) == "pg_dist_partition"
            layout = {p.relation: (p.placement, p.distribution_column, p.colocate_with)
                      for p in table_layout(conn)}
        finally:
            conn.execute("drop table pg_catalog.pg_dist_partition")
    assert layout["public.companies"] == ("distributed", "id", None)
    assert layout["public.tenant_things"] == ("distributed", "company_id", "public.companies")
    assert layout["public.global_things"] == ("reference", None, None)
    assert layout["other.elsewhere"] == ("local", None, None)


def test_the_citus_rules_run_only_for_profile_citus(citus_db: str) -> None:
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute("create policy select_self_fixed on public.memberships for select to citus_probe_login "
                     "using (auth_user_id = auth.uid())")
        vanilla = run_checks(conn)
    assert not any(f.check.startswith("citus.") for f in vanilla)
    assert any(f.check == "policy.initplan" for f in vanilla)  # replaced by citus.policy_subquery
    assert not any(f.check == "policy.initplan" for f in citus_findings(citus_db))


def test_the_vanilla_schema_fails_the_citus_rules_where_a_real_citus_refused_it(neurant_db: TestDatabase) -> None:
    """Issue 12: what Citus 13.2 rejected in the schema as shipped, found statically."""
    result = CliRunner().invoke(cli, ["--database-url", neurant_db.url, "doctor", "--profile", "citus", "--json"])
    assert result.exit_code == 1
    found = json.loads(result.output)
    by_check: dict[str, set[str]] = {}
    for f in found:
        if f["level"] == "error":
            by_check.setdefault(f["check"], set()).add(f["object"])
    assert "public.subscription_plans.select_own_plan" in by_check["citus.policy_subquery"]
    assert "public.chatbots.select_visible" in by_check["citus.policy_subquery"]
    # Issue 19: Citus recreates these permissive on its shards (the citus render folds them).
    assert {"public.chatbots.update_while_writable", "private.integration_credentials.deny_members"
            } <= by_check["citus.policy_restrictive"]
    assert {"public.users users_auth_user_id_key",
            "public.user_invitations user_invitations_token_hash_key"} <= by_check["citus.unique_key"]
    assert "private.audit_row_change()" in by_check["citus.insert_values_subquery"]
    assert "private.audit_row_change()" in by_check["citus.trigger_table_name"]
    assert "private.get_user_company_id()" in by_check["citus.policy_reads_distributed"]
    assert "authenticated" in by_check["citus.nologin_role"]
    assert "public.chatbots" in by_check["citus.unsafe_triggers"]
    assert "public.messages authenticated" in by_check["citus.insert_grant_defaults"]
    placements = {f["object"]: f["message"] for f in found if f["check"] == "citus.placement"}
    assert placements["public.messages"].startswith("distributed by company_id, colocated with public.companies")
    assert placements["public.subscription_plans"].startswith("reference table")
    assert all("hint" in f for f in found if f["check"].startswith("citus.") and f["level"] == "error")


def test_the_text_output_prints_each_citus_finding_with_its_hint_and_exits_1(citus_db: str) -> None:
    result = CliRunner().invoke(cli, ["--database-url", citus_db, "doctor", "--profile", "citus"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if "citus.unique_key" in line and "members_broken_key" in line)
    assert lines[at + 1].strip().startswith("hint: Add company_id to the key")
    assert "Traceback" not in result.output
