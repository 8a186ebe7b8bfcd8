"""A short printed summary of what a migrated database holds (used by `make demo`)."""

from __future__ import annotations

import json
from collections.abc import Callable

from .database import DatabaseTarget
from .paths import sql_root


def load_demo_data(target: DatabaseTarget) -> None:
    """Create the demo tenants through the public API (idempotent; see seeds/_demo_data.sql)."""
    sql = (sql_root() / "seeds" / "_demo_data.sql").read_text(encoding="utf-8")
    with target.connect(autocommit=False, purpose="demo") as conn:
        conn.execute(sql.encode("utf-8"))
        conn.commit()


def print_isolation_demo(target: DatabaseTarget, echo: Callable[[str], None]) -> None:
    """Show what one member of each demo tenant sees under RLS, next to the totals."""
    with target.connect(autocommit=False, purpose="demo") as conn:
        totals = conn.execute(
            "select (select count(*) from public.companies), (select count(*) from public.conversations), "
            "(select count(*) from public.hitl_escalations)").fetchone()
        members = conn.execute(
            "select u.email, u.role::text, u.auth_user_id::text from public.users u "
            "join public.companies c on c.id = u.company_id "
            "where c.name in ('Acme Retail', 'Clinica Sol') order by c.name, u.role").fetchall()
        if not members or totals is None:
            return
        echo(f"\nunder RLS (totals: {totals[0]} companies, {totals[1]} conversations, "
             f"{totals[2]} HITL escalations):")
        for email, role, auth_uid in members:
            conn.execute("select set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"sub": auth_uid, "role": "authenticated", "email": email}),))
            conn.execute("set local role authenticated")
            seen = conn.execute(
                "select (select string_agg(name, ', ') from public.companies), "
                "(select count(*) from public.conversations), (select count(*) from public.hitl_escalations)"
            ).fetchone()
            conn.rollback()
            if seen:
                echo(f"  {email:<20} {role:<13} sees company {seen[0]!s:<12} "
                     f"{seen[1]} conversation(s), {seen[2]} escalation(s)")


def print_summary(target: DatabaseTarget, echo: Callable[[str], None]) -> None:
    with target.connect(purpose="summary") as conn:
        tables = conn.execute(
            """
            select n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (select count(*) from pg_policy p where p.polrelid = c.oid),
                   coalesce(s.n_live_tup, 0)
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            left join pg_stat_user_tables s on s.relid = c.oid
            where c.relkind in ('r', 'p') and n.nspname in ('public', 'private', 'archive')
            order by 1, 2
            """
        ).fetchall()
        echo(f"{'table':<40} {'RLS':<8} {'policies':>8}")
        for schema, name, rls, force, policies, _rows in tables:
            flag = "forced" if rls and force else ("on" if rls else "OFF")
            echo(f"{schema + '.' + name:<40} {flag:<8} {policies:>8}")
        functions = conn.execute(
            "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname in ('public', 'private')"
        ).fetchone()
        echo(f"\n{len(tables)} tables, {sum(t[4] for t in tables)} policies, "
             f"{functions[0] if functions else 0} functions")
        if any(t[1] == "companies" for t in tables):
            row = conn.execute(
                "select count(*), coalesce(string_agg(name, ', ' order by name), '') "
                "from public.companies"
            ).fetchone()
            echo(f"tenants: {row[0] if row else 0} {('(' + row[1] + ')') if row and row[1] else ''}")
        if any(t[1] == "subscription_plans" for t in tables):
            plans = conn.execute(
                "select string_agg(code, ', ' order by code) from public.subscription_plans"
            ).fetchone()
            echo(f"plans: {plans[0] if plans else ''}")
