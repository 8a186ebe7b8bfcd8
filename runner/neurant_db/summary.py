"""A short printed summary of what a migrated database holds (used by `make demo`)."""

from __future__ import annotations

from collections.abc import Callable

from .database import DatabaseTarget


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
