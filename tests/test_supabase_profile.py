"""Profile supabase: the platform already has anon/authenticated/service_role and the
auth schema; the package must build on them and never recreate them."""

from __future__ import annotations

import json

import psycopg
from click.testing import CliRunner

from neurant_db.cli import cli
from neurant_db.render import render_all
from neurant_db.settings import Settings


def test_profile_supabase_creates_no_roles_and_no_auth_schema() -> None:
    migrations = {m.id: m for m in render_all(Settings(profile="supabase").validate())}
    auth = migrations["0010_auth_surface"]
    for text in (auth.apply_sql, auth.rollback_sql):
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        assert code.strip() == "", code


def test_profile_supabase_migrates_onto_an_existing_auth_surface(scratch_db: str) -> None:
    # What Supabase provides before our first migration: the vanilla auth surface.
    vanilla = {m.id: m for m in render_all(Settings(profile="vanilla").validate())}
    # On a server whose template is a Supabase project's database (NEURANT_TEST_PROFILE=supabase
    # on one) the platform's own surface is already there.
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        if conn.execute("select to_regnamespace('auth') is null").fetchone() == (True,):
            conn.execute(vanilla["0010_auth_surface"].apply_sql.encode())
        conn.execute("comment on function auth.uid() is 'provided by the platform'")
        conn.execute("create schema if not exists extensions; "
                     "grant usage on schema extensions to anon, authenticated, service_role")
    args = ["--database-url", scratch_db, "--profile", "supabase", "--embedding-dimensions", "1536"]
    result = CliRunner().invoke(cli, [*args, "migrate"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(scratch_db) as conn:
        comment = conn.execute("select obj_description('auth.uid()'::regprocedure)").fetchone()
        dims = conn.execute(
            "select format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = 'public.document_chunks'::regclass and attname = 'embedding'").fetchone()
    assert comment == ("provided by the platform",)
    assert dims == ("extensions.vector(1536)",) or dims == ("vector(1536)",)
    doctor = CliRunner().invoke(cli, [*args, "doctor", "--json"])
    assert [f for f in json.loads(doctor.output) if f["level"] == "error"] == []
    back = CliRunner().invoke(cli, [*args, "rollback", "--to", "0", "--yes"])
    assert back.exit_code == 0, back.output
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("select to_regprocedure('auth.uid()') is not null").fetchone() == (True,)
