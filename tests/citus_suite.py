"""The project's own suites on a real Citus cluster (tests/test_citus_cluster_suite.py): which
of them pass there, and the counts printed at the end of the run (tests/conftest.py), so CI
shows how much of the suite ran distributed.

On a distributed database the fixtures are loaded once and committed before the suites
(testdb.commit_fixtures): Citus cannot read, as one user, a placement another user wrote in
the same transaction (25001), so they cannot be written inside each test's transaction as
on plain PostgreSQL. The isolation matrix runs each cell in a transaction of its own (each
probe rolls its write back) for the same reason. The helpers of
tests/fixtures/0000_test_helpers.sql send the claims as services.md section 11 says."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The pgTAP files that pass on the cluster, unchanged (growing). The others, with what stops
# them, are in docs/scale-out.md ("What was verified how").
PGTAP_ON_CLUSTER = ("0220_tenancy_catalog.sql", "1020_chatbot_catalog.sql")
# The isolation matrix runs whole on the cluster (tests/test_citus_cluster_suite.py); an
# assertion's description names its table, for the "not yet" line of a failing run.
MATRIX_TABLE = re.compile(r"\b((?:public|private|archive|auth)\.[a-z_]+)")


@dataclass
class ClusterCounts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    not_applicable: int = 0  # isolation-matrix cells whose target selects no row (as on every profile)
    vanilla_shape: int = 0  # the assertions about the vanilla shape itself (test_citus_profile)
    files: list[str] = field(default_factory=list)
    not_yet: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"citus cluster suite: {self.passed} passed, {self.failed} failed, {self.skipped} skipped "
                f"({', '.join(self.files)}; {self.not_applicable} matrix cells without a target row for their "
                f"identity; {self.vanilla_shape} vanilla-shape assertions proven by tests/citus "
                f"instead)" + (f"; not yet on the cluster: {', '.join(self.not_yet)}" if self.not_yet else ""))


COUNTS = ClusterCounts()


def matrix_table(description: str) -> str | None:
    """The table an isolation-matrix assertion is about (its description names it)."""
    found = MATRIX_TABLE.search(description)
    return found.group(1) if found else None
