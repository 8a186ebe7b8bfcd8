"""`neurant-db render|lint|matrix|doctor|docs|demo`: the schema as text, as checked,
as documented and as shown (a thin click layer over the library)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..docs import build as build_docs
from ..docs import require_migrated as require_fully_migrated
from ..docs import stale_files, write_docs
from ..doctor import run_checks
from ..doctor_data import DEFAULT_STATEMENT_TIMEOUT_MS, run_data_checks
from ..errors import NeurantError
from ..isolation import SpecError, load_spec, render_matrix
from ..migrate import require_migrated
from ..paths import sql_root
from ..releases import immutability_findings
from ..render import render_all, write_rendered
from ..schema_diff import check_schema
from ..sql_style import check_tree
from ..squawk_lint import check_migrations
from ..summary import load_demo_data, print_isolation_demo, print_summary
from .context import Context, pass_ctx, reference_server, reference_url_option
from .json_output import emit, json_option


@click.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write NNNN_name.sql and .rollback.sql files here instead of printing.")
@json_option()
@pass_ctx
def render(c: Context, out: Path | None, as_json: bool) -> None:
    """Render the migrations with jinja2, in global version order.

    \b
    Example:
      neurant-db --profile supabase render --out build/sql
      neurant-db render --json | jq '.migrations[].checksum'
    """
    migrations = c.migrations()
    if out is not None:
        files = write_rendered(migrations, out)
        if as_json:
            emit({"out": str(out), "files": [str(f) for f in files]})
            return
        click.echo(f"wrote {len(files)} files ({len(migrations)} migrations) to {out}")
        return
    if as_json:
        emit({"settings": c.settings().template_context(),
              "migrations": [{"version": m.version, "id": m.id, "checksum": m.checksum,
                              "rollback_checksum": m.rollback_checksum, "apply_sql": m.apply_sql,
                              "rollback_sql": m.rollback_sql} for m in migrations]})
        return
    for m in migrations:
        click.echo(f"-- ===== {m.id} =====")
        click.echo(m.apply_sql.rstrip())
        click.echo()




@click.command()
@click.option("--no-data", is_flag=True, help="Only print the summary; create no demo tenants.")
@pass_ctx
def demo(c: Context, no_data: bool) -> None:
    """Create two demo tenants through the public API (idempotent) and print what
    exists: tables, policies, tenants, and what each member sees under RLS.

    \b
    Example:
      neurant-db demo
    """
    target = c.target()
    with target.connect(purpose="check migrated") as conn:
        require_migrated(conn)
    if not no_data:
        if c.settings().profile != "vanilla":
            raise NeurantError("demo tenants are only created with profile vanilla (they write auth.users)",
                               hint="use --no-data to print the summary only")
        load_demo_data(target)
    print_summary(target, click.echo)
    print_isolation_demo(target, click.echo)


@click.command()
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the Markdown here instead of printing it.")
def matrix(out: Path | None) -> None:
    """Print the access matrix (table x identity x command) the isolation suite checks.

    \b
    Example:
      neurant-db matrix --out docs/access-matrix.md
    """
    try:
        text = render_matrix(load_spec(sql_root() / "tests" / "isolation" / "access_spec.toml"))
    except SpecError as exc:
        raise NeurantError(f"access spec: {exc}") from None
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {out}")


@click.command()
@json_option("Machine-readable findings.")
def lint(as_json: bool) -> None:
    """Check the SQL files against the authoring style of CONVENTIONS.md (exit 1 on findings).

    Numbering by domain and layer, leading comments, rollback headers, two-space
    indentation, named foreign keys with ON DELETE, hints as sentences; then squawk
    (the dev extra's squawk-cli) on the rendered migrations, with .squawk.toml and the
    justified exceptions of squawk-exceptions.toml; and the releases of releases.json:
    released migrations render as recorded, new ones are numbered above them (release
    check). Needs no database.

    \b
    Example:
      neurant-db lint
      neurant-db lint --json | jq '.[].rule'
    """
    findings = check_tree()
    findings += check_migrations(sql_root())
    findings += immutability_findings()
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
        click.echo(f"{len(findings)} style finding(s)")
    if findings:
        sys.exit(1)


@click.command()
@json_option("Machine-readable findings.")
@click.option("--all", "show_all", is_flag=True, help="Also print info findings.")
@click.option("--profile", "doctor_profile", type=click.Choice(("vanilla", "supabase", "citus")), default=None,
              help="Rules to apply (default: the render profile); citus adds the Citus rules "
              "(placements as info).")
@reference_url_option()
@click.option("--no-schema-check", is_flag=True,
              help="Skip comparing the schema with a reference build of the applied migrations.")
@click.option("--data", "data_checks", is_flag=True,
              help="Check the data instead of the catalog (read-only, safe on production): counters, usage, "
              "NOT VALID constraints, invalid indexes, orphans, legal holds, cold exports, amcheck.")
@click.option("--statement-timeout", "statement_timeout_ms", type=click.IntRange(min=1),
              default=DEFAULT_STATEMENT_TIMEOUT_MS, show_default=True,
              help="With --data: statement_timeout (and lock_timeout) of each check, in milliseconds; a check "
              "that does not finish in time is reported as a warning.")
@pass_ctx
def doctor(c: Context, as_json: bool, show_all: bool, doctor_profile: str | None, reference_url: str | None,
           no_schema_check: bool, data_checks: bool, statement_timeout_ms: int) -> None:
    """Check the live schema: every object the applied migrations define exists as they
    define it and nothing else is there (schema.missing, schema.differs, schema.extra:
    compared with a reference build in a scratch database, see docs/doctor.md), RLS
    forced, policies, definer hygiene, FK indexes, comments, tenant keys. Read-only on
    the target. Exit 1 on any error-level finding. With --profile citus,
    also every Citus restriction as a static rule (policy subqueries, triggers on
    shards, unique keys, foreign keys, NOLOGIN request roles, insert grants): they
    run on plain PostgreSQL, with the table placements of pg_dist_partition, else of
    private.citus_layout, else the default plan (see docs/doctor.md); on a Citus cluster
    also every shard placement's policies against its table's (citus.placement_policies:
    after a shard move or rebalance, docs/scale-out.md) and the shards the policy helpers'
    placement readers name (citus.placement_readers: after a split).

    With --data, the rows instead (docs/operations.md, "Data health: doctor --data"):
    each check in its own read-only transaction bounded by --statement-timeout; each
    finding carries the query that shows it and the fix.

    \b
    Example:
      neurant-db doctor --json > doctor.json
      neurant-db doctor --profile citus --all
      neurant-db doctor --data --statement-timeout 60000 --json
    """
    if data_checks:
        with c.target().connect(purpose="doctor-data") as conn:
            findings = run_data_checks(conn, statement_timeout_ms)
    else:
        profile = doctor_profile or c.settings().profile
        with c.target().connect(purpose="doctor") as conn:
            findings = run_checks(conn, profile)
    if not no_schema_check and not data_checks:
        findings += check_schema(c.target(), c.settings(), reference_server=reference_server(reference_url))
    errors = [f for f in findings if f.level == "error"]
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for f in findings:
            if f.level == "info" and not show_all:
                continue
            colour = {"error": "red", "warning": "yellow"}.get(f.level)
            click.echo(click.style(f"{f.level.upper():<7}", fg=colour) + f" {f.check:<20} {f.object}: {f.message}")
            if f.hint:
                click.echo(f"{'':<28} hint: {f.hint}")
            if f.query:
                click.echo(f"{'':<28} query: {f.query}")
        infos = sum(1 for f in findings if f.level == "info")
        click.echo(f"{len(errors)} error(s), {infos} info (use --all to list them)")
    if errors:
        sys.exit(1)


@click.command()
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 listing the files that differ from a fresh build.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("docs"),
              show_default=True, help="Folder of the generated files (schema.sql, schema.md, erd.svg, contract.*).")
@pass_ctx
def docs(c: Context, check: bool, out: Path) -> None:
    """Generate the schema dump (schema.sql), the reference (schema.md), the ER
    diagram (erd.svg) and the machine-readable contract (contract.json: tables, RPCs
    with argument and return types, error codes; contract.ts and contract_types.py:
    TypeScript and Python types) from a fully migrated database. The committed files
    describe the default settings (profile vanilla, embedding_dimensions 1536) and
    are the same text from every supported PostgreSQL major (15 and later).

    \b
    Example:
      neurant-db migrate && neurant-db docs
      neurant-db --database-url postgresql://ci@db/fresh docs --check
    """
    settings = c.settings()
    target = c.target()
    require_fully_migrated(target, render_all(settings))
    generated = build_docs(target, settings)
    if not check:
        for path in write_docs(out, generated):
            click.echo(f"wrote {path}")
        return
    stale = stale_files(out, generated)
    if not stale:
        click.echo(f"docs are fresh: {', '.join(sorted(generated))} in {out}")
        return
    for s in stale:
        click.secho(f"stale: {out / s.name}", fg="red")
        click.echo(s.diff)
    click.echo(f"{len(stale)} stale file(s); regenerate with: neurant-db docs --out {out}")
    sys.exit(1)
