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

from neurant_db.paths import sql_root

ROOT = sql_root()
# Every pgTAP file, and tests/citus: each runs on the cluster on a fresh copy of the suite
# database, one statement per transaction (neurant_db.tap: the role and settings carried
# from one statement to the next), so no transaction reads as a member what the superuser
# or service_role wrote in it.
PGTAP_PATHS = (*sorted((ROOT / "tests" / "pgtap").glob("*.sql")), *sorted((ROOT / "tests" / "citus").glob("*.sql")))
# Test set-up statements (superuser) that write a reference table after a multi-shard
# statement run sequentially, as the fixtures and the RPCs writing several tables do.
CLUSTER_PREAMBLE = [("citus sequential", "set local citus.multi_shard_modify_mode = 'sequential';\n")]

# What does not hold on the cluster yet, each with its reason (docs/scale-out.md, "What was
# verified how"). Both are strict: an entry that now holds fails the suite until removed.
# (file, assertion description) -> why it fails there.
KNOWN_FAILING: dict[tuple[str, str], str] = {
}
# (file, part of the refused statement's error) -> why; the statement's assertions do not run.
KNOWN_ERRORS: dict[tuple[str, str], str] = {
}
# The isolation matrix's tables whose every cell (and catalog check) passes on the cluster
# (growing); the cells of the other tables run too and are counted as not yet passing.
MATRIX_TABLE = re.compile(r"\b((?:public|private|archive|auth)\.[a-z_]+)")


@dataclass
class ClusterCounts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    vanilla_shape: int = 0  # the assertions about the vanilla shape itself (test_citus_profile)
    known: int = 0  # failing for a reason named in KNOWN_FAILING
    not_run: int = 0  # in a statement refused for a reason named in KNOWN_ERRORS
    files: list[str] = field(default_factory=list)
    not_yet: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"citus cluster suite: {self.passed} passed, {self.failed} failed, {self.skipped} skipped "
                f"({len(self.files)} files: {', '.join(self.files)}; {self.vanilla_shape} vanilla-shape assertions "
                f"proven by tests/citus instead; {self.known} known to fail and {self.not_run} not run after a "
                f"refused statement, each for its named reason)"
                + (f"; not yet on the cluster: {', '.join(self.not_yet)}" if self.not_yet else "")
                + "".join(f"\n  not yet: {r}" for r in self.reasons))


COUNTS = ClusterCounts()


def matrix_table(description: str) -> str | None:
    """The table an isolation-matrix assertion is about (its description names it)."""
    found = MATRIX_TABLE.search(description)
    return found.group(1) if found else None
