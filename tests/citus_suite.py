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
from neurant_db.testdb import CITUS_SEQUENTIAL

ROOT = sql_root()
# Every pgTAP file, and tests/citus: each runs on the cluster on a fresh copy of the suite
# database, one statement per transaction (neurant_db.tap: the role and settings carried
# from one statement to the next), so no transaction reads as a member what the superuser
# or service_role wrote in it.
PGTAP_PATHS = (*sorted((ROOT / "tests" / "pgtap").glob("*.sql")), *sorted((ROOT / "tests" / "citus").glob("*.sql")))
# Test set-up statements (superuser) that write a reference table after a multi-shard
# statement run sequentially, as the fixtures and the RPCs writing several tables do.
# One connection per worker (cached from one statement's transaction to the next): the
# suite's data is tiny, and each statement commits on its own.
CLUSTER_PREAMBLE = [("citus sequential", CITUS_SEQUENTIAL),
                    ("one connection per worker", "set local citus.max_adaptive_executor_pool_size = 1;\n")]

# What does not hold on the cluster yet, each with its reason (docs/scale-out.md, "What was
# verified how"). Both are strict: an entry that now holds fails the suite until removed.
MIXED = ("one statement probes as several identities (tests.outcome_as / attempt_as / same_either_way): company B's "
         "fingerprint is read as the superuser after a member's or service_role's probe in the same transaction, and "
         "Citus keeps for the whole transaction which user's connection touched each placement group (a rollback to "
         "the probe's savepoint does not undo it: placement_connection.c), so a later identity meets a placement an "
         "earlier probe wrote (25001); a test reading another company as superuser cannot be delegated to the "
         "company's worker as the RPCs are")
DEFERRED = ("Citus does not send SET CONSTRAINTS ALL IMMEDIATE to the workers: the archive's deferred keys are "
            "checked at the workers' commit, after the attempt was rolled back")
# Reasons whose assertions fail on some runs and hold on others (which earlier probe's
# connection a later one meets varies): not strict.
UNSTABLE = {MIXED}
# (file, assertion description) -> why it fails there.
KNOWN_FAILING: dict[tuple[str, str], str] = {
    ("0010_catalog_hardening.sql", "superuser cannot move a row of private.memberships to another company"): MIXED,
    ("0010_catalog_hardening.sql", "delete_rows deletes what the delete policies let the caller delete and nothing "
     "of another company"): MIXED,
    ("0010_catalog_hardening.sql", "match_document_chunks_for_company(uuid,vector,integer,double precision) called by "
     "an owner with another company's ids changes and returns nothing of it, and answers as for unknown ids"): MIXED,
    ("0010_catalog_hardening.sql", "match_document_chunks_for_company(uuid,vector,integer,double precision) called by "
     "an identity without a company with another company's ids changes and returns nothing of it"): MIXED,
    ("0010_catalog_hardening.sql", "create_company_with_owner(text,text,text,text) called by an identity without a "
     "company with another company's ids changes and returns nothing of it"): MIXED,
    **{("1005_operador_scope.sql", d): MIXED for d in (
        "naming an assigned chatbot_id does not tell an operador that an unassigned chatbot's conversation is closed",
        "naming an assigned chatbot_id does not tell an operador that an unassigned chatbot's conversation is in human "
        "mode",
        "naming an assigned chatbot_id does not tell an operador that an unassigned chatbot's conversation is in bot "
        "mode",
        "naming an assigned chatbot_id does not tell an operador that another company's conversation exists")},
    ("1010_conversations.sql", "a message pointing at another company's conversation fails exactly like one "
     "pointing at no conversation"): MIXED,
    ("2000_knowledge_integrations.sql", "match_document_chunks scans the HNSW index"):
        "the index scan runs on the workers: the coordinator's pg_stat counters of the index stay 0",
    ("2010_integration_credentials.sql", "credentials are not readable through RETURNING of an integrations update"):
        "Citus refuses the RETURNING subquery first (0A000 non-IMMUTABLE functions are not allowed in the "
        "RETURNING clause): refused either way",
    **{("3000_lifecycle.sql", d): DEFERRED for d in (
        "an archived reaction belongs to the conversation of its message (a hold on that conversation covers it)",
        "an archived knowledge query belongs to the conversation of its message",
        "an archived message carries the chatbot of its conversation",
        "an archived HITL escalation carries the chatbot of its conversation",
        "an archived reaction cannot point at another company's archived message",
        "an archived message cannot point at another company's archived conversation")},
}
# (file, part of the refused statement's error) -> why; the statement's assertions do not run.
KNOWN_ERRORS: dict[tuple[str, str], str] = {
    ("3000_lifecycle.sql", "direct joins between distributed and local tables"):
        "the file's own check joins its temp table of message fingerprints with the archive, which Citus cannot plan",
    ("0200_tenancy_rules.sql", "[25001]"): MIXED,
    ("1000_chatbots.sql", "[25001]"): MIXED,
    ("1005_operador_scope.sql", "[25001]"): MIXED,
    ("1010_conversations.sql", "[25001]"): MIXED,
    ("2010_integration_credentials.sql", "complex joins are only supported"):
        "the test's own check joins audit_logs with every credential (on true), which Citus cannot plan",
}
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
    known: int = 0  # failing for a reason named in KNOWN_FAILING
    not_run: int = 0  # in a statement refused for a reason named in KNOWN_ERRORS
    files: list[str] = field(default_factory=list)
    not_yet: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)  # reason -> "file: assertion or statement"

    def line(self) -> str:
        return (f"citus cluster suite: {self.passed} passed, {self.failed} failed, {self.skipped} skipped "
                f"({len(self.files)} files: {', '.join(self.files)}; {self.not_applicable} matrix cells without a "
                f"target row for their identity; {self.vanilla_shape} vanilla-shape assertions "
                f"proven by tests/citus instead; {self.known} known to fail and {self.not_run} not run after a "
                f"refused statement, each for its named reason)"
                + (f"; not yet on the cluster: {', '.join(self.not_yet)}" if self.not_yet else "")
                + "".join(f"\n  not yet ({len(what)}): {why}: {'; '.join(what)}" for why, what in self.reasons.items()))

    def name(self, why: str, what: str) -> None:
        self.reasons.setdefault(why, []).append(what)


COUNTS = ClusterCounts()


def matrix_table(description: str) -> str | None:
    """The table an isolation-matrix assertion is about (its description names it)."""
    found = MATRIX_TABLE.search(description)
    return found.group(1) if found else None
