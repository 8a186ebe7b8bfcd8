"""The request paths of profile citus on a real Citus cluster (tests/citus_cluster.py),
each sent the documented way (runner/neurant_db/citus_request.py, docs/services.md §11):
the failures 3-8 of issue 19."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from neurant_db.citus_request import citus_request
from neurant_db.cli import cli

from .citus_cluster import CitusCluster, distributed_database

ARGS = ["--profile", "citus", "--embedding-dimensions", "8"]


@dataclass(frozen=True)
class Tenants:
    url: str
    owner_a: str  # auth identities
    owner_b: str
    company_a: str
    company_b: str


def request(url: str, sub: str | None, statements: Sequence[tuple[str, Sequence[Any]]],
            role: str = "authenticated") -> list[list[tuple[Any, ...]]]:
    """One request (one transaction) of the identity `sub` (None: the backend, service_role)."""
    claims = {"sub": sub, "role": role} if sub else {"role": role}
    results: list[list[tuple[Any, ...]]] = []
    with psycopg.connect(url, autocommit=True) as conn, citus_request(conn, claims, role) as r:
        for sql, params in statements:
            cur = r.execute(sql, params)
            results.append(cur.fetchall() if cur.description else [])
    return results


def one(url: str, sub: str | None, sql: str, *params: Any, role: str = "authenticated") -> Any:
    rows = request(url, sub, [(sql, params)], role)[0]
    return rows[0][0] if rows else None


def sign_up(url: str, name: str) -> str:
    sub = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, aud, role, email, email_confirmed_at, raw_user_meta_data) "
                     "values (%s, 'authenticated', 'authenticated', %s, now(), '{}')",
                     (sub, f"{name}.{sub[:8]}@example.com"))
    return sub


@pytest.fixture(scope="module")
def tenants(citus_cluster: CitusCluster) -> Iterator[Tenants]:
    """A migrated distributed database with two companies, each created by its owner
    through create_company_with_owner in the documented request sequence (failure 3:
    42501 on companies_102033 when the role was set after the propagate setting)."""
    with distributed_database(citus_cluster) as url:
        result = CliRunner().invoke(cli, ["--database-url", url, *ARGS, "migrate"])
        assert result.exit_code == 0, result.output
        owner_a, owner_b = sign_up(url, "owner.a"), sign_up(url, "owner.b")
        company_a = str(one(url, owner_a, "select public.create_company_with_owner('Company A', null, 'free', 'Ana')"))
        company_b = str(one(url, owner_b, "select public.create_company_with_owner('Company B', null, 'free', 'Bea')"))
        with psycopg.connect(url, autocommit=True) as conn:  # billing, as the backend would
            conn.execute("update public.companies set subscription_plan = 'enterprise' where id in (%s, %s)",
                         (company_a, company_b))
        yield Tenants(url, owner_a, owner_b, company_a, company_b)


def test_the_request_sequence_reaches_the_workers_with_the_callers_identity(tenants: Tenants) -> None:
    t = tenants
    # The policies of users run on the worker holding the shard: the owner sees its own
    # row there (claims and role arrived), and nothing of company B.
    assert one(t.url, t.owner_a, "select count(*) from public.users where company_id = %s", t.company_a) == 1
    assert one(t.url, t.owner_a, "select count(*) from public.users where company_id = %s", t.company_b) == 0
    assert one(t.url, t.owner_a, "select auth.uid()::text from public.users where company_id = %s",
               t.company_a) == t.owner_a
    # subscription_plans.select_own_plan calls get_user_plan_code() (a definer helper
    # reading companies): failure 3 was 42501 on memberships_102014 from a member.
    plans = request(t.url, t.owner_a, [("select code from public.subscription_plans order by code", ())])[0]
    assert ("enterprise",) in plans


def test_a_keyed_member_query_is_routed_to_one_shard(tenants: Tenants) -> None:
    t = tenants
    plan = request(t.url, t.owner_a, [("explain select id from public.users where company_id = %s", (t.company_a,))])
    text = "\n".join(r[0] for r in plan[0])
    assert "Task Count: 1" in text, text
