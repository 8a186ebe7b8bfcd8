"""`neurant-db bench` at toy scale: its timings are not asserted (speed is measured,
not tested), but every hot query must return exactly the same rows under RLS as
the explicit tenant filter without RLS - otherwise the ratios compare different work."""

from __future__ import annotations

from neurant_db import bench
from neurant_db.database import DatabaseTarget
from neurant_db.migrate import migrate
from neurant_db.render import render_all
from neurant_db.testdb import test_settings


def test_rls_returns_the_same_rows_as_the_explicit_tenant_filter(scratch_db: str) -> None:
    settings = test_settings()
    migrate(DatabaseTarget(scratch_db), render_all(settings), settings)
    results = bench.run(scratch_db, companies=4, conversations=20, messages=3, iterations=10,
                        echo=lambda _line: None, rounds=1)
    assert [r["query"] for r in results] == [q.name for q in bench.QUERIES]
    assert all(r["same_rows"] for r in results), results
    assert all(r["baseline_us"] > 0 and r["rls_keyed_us"] > 0 for r in results)
