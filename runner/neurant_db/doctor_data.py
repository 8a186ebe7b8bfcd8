"""`neurant-db doctor --data`: the data itself checked against the rules that keep it, read-only.

Where `doctor` (doctor.py) reads the catalog, these checks read the rows: the counters the
triggers keep (companies' current_* and documents.chunk_count) recounted, the monthly
usage against the messages still stored, constraints left NOT VALID, invalid indexes (the
check of doctor.py, reused), rows whose parent is gone (every foreign key, live and
archive), rows both live and archived, legal holds on nothing, the cold-export ledger, and
`amcheck`'s bt_index_check on every B-tree index where the extension is installed.

Safe on production: every check runs in a transaction of its own, READ ONLY and
REPEATABLE READ (its counts are of one snapshot), with `statement_timeout` and
`lock_timeout` set locally, so a check that is too slow reports a warning finding
(`did not finish`) and the others still run. Nothing takes more than an ACCESS SHARE lock
(bt_index_check, not bt_index_parent_check). Each finding carries the query that shows
it (`query`) and the fix (`hint`); docs/operations.md, "Data health: doctor --data", says
how to read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import errors, sql

from .doctor import indexes_are_valid
from .doctor_finding import Finding

SCHEMAS = ("public", "private", "archive")
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000

DataCheck = Callable[[psycopg.Connection], Iterator[Finding]]
DATA_CHECKS: list[tuple[str, DataCheck]] = []


def data_check(name: str) -> Callable[[DataCheck], DataCheck]:
    def register(fn: DataCheck) -> DataCheck:
        DATA_CHECKS.append((name, fn))
        return fn
    return register


def _literal(value: Any) -> str:
    return sql.Literal(str(value)).as_string(None)


def _count(conn: psycopg.Connection, check: str, obj: str, query: str) -> tuple[int, Finding | None]:
    """count(*) of `query` in a savepoint: a statement that times out gives a warning finding
    for its object alone, and the check goes on with the next one."""
    try:
        with conn.transaction():
            row = conn.execute(f"select count(*) from ({query}) q").fetchone()
        return (int(row[0]) if row else 0), None
    except (errors.QueryCanceled, errors.LockNotAvailable) as exc:
        return 0, Finding("warning", check, obj, f"did not finish within statement_timeout "
                          f"({exc.diag.message_primary}): not checked",
                          hint="run it off-peak with a larger --statement-timeout", query=query)


# --- counters -----------------------------------------------------------------------------
# (counter column of public.companies, the recount of one company `c`): the rows each
# trigger counts (schema/0140, 1020, 2000, 2010 via private.consume_quota).
COMPANY_COUNTERS: list[tuple[str, str]] = [
    ("current_user_count", "select count(*) from public.users t where t.company_id = {c}"),
    ("current_chatbot_count", "select count(*) from public.chatbots t where t.company_id = {c}"),
    ("current_document_count", "select count(*) from public.documents t where t.company_id = {c}"),
    ("current_storage_bytes",
     "select coalesce(sum(t.size_bytes), 0) from public.documents t where t.company_id = {c}"),
    ("current_integration_count", "select count(*) from public.integrations t where t.company_id = {c}"),
    ("current_pending_invitation_count",
     "select count(*) from public.user_invitations t where t.company_id = {c} and t.status = 'pending'"),
]

# One pass per counted table (grouped by company, joined to companies): on Citus each CTE is
# a query of its own, grouped by the distribution column.
COUNTERS_SQL = """
with users as (select company_id, count(*) as n from public.users group by company_id),
     chatbots as (select company_id, count(*) as n from public.chatbots group by company_id),
     documents as (select company_id, count(*) as n, coalesce(sum(size_bytes), 0) as bytes
                   from public.documents group by company_id),
     integrations as (select company_id, count(*) as n from public.integrations group by company_id),
     pending as (select company_id, count(*) as n from public.user_invitations
                 where status = 'pending' group by company_id)
select c.id::text,
       c.current_user_count, coalesce(u.n, 0),
       c.current_chatbot_count, coalesce(b.n, 0),
       c.current_document_count, coalesce(d.n, 0),
       c.current_storage_bytes, coalesce(d.bytes, 0),
       c.current_integration_count, coalesce(i.n, 0),
       c.current_pending_invitation_count, coalesce(p.n, 0)
from public.companies c
left join users u on u.company_id = c.id
left join chatbots b on b.company_id = c.id
left join documents d on d.company_id = c.id
left join integrations i on i.company_id = c.id
left join pending p on p.company_id = c.id
order by c.id
"""


@data_check("data.counter")
def company_counters(conn: psycopg.Connection) -> Iterator[Finding]:
    """Each live counter of public.companies equals the rows it counts (the triggers move it
    in the row's own transaction; a difference means rows were written with the triggers off,
    or a counter was set by hand)."""
    for row in conn.execute(COUNTERS_SQL).fetchall():
        company = row[0]
        for k, (column, recount) in enumerate(COMPANY_COUNTERS):
            stored, actual = row[1 + 2 * k], row[2 + 2 * k]
            if stored == actual:
                continue
            c = _literal(company)
            count = recount.format(c="c.id")
            yield Finding(
                "error", "data.counter", f"public.companies {company} {column}",
                f"{column} is {stored}, the rows count {actual}",
                hint=(f"begin; select 1 from public.companies where id = {c} for update; "
                      f"update public.companies c set {column} = ({count}) where c.id = {c}; commit; "
                      "(the row lock first: a concurrent writer's trigger then moves the corrected counter)"),
                query=f"select c.{column} as counter, ({count}) as rows from public.companies c where c.id = {c}")


CHUNKS_SQL = """
with chunks as (select company_id, document_id, count(*) as n from public.document_chunks
                group by company_id, document_id)
select d.company_id::text, d.id::text, d.chunk_count, coalesce(k.n, 0)
from public.documents d
left join chunks k on k.company_id = d.company_id and k.document_id = d.id
where d.chunk_count <> coalesce(k.n, 0)
order by 1, 2
"""


@data_check("data.counter")
def document_chunk_counts(conn: psycopg.Connection) -> Iterator[Finding]:
    """documents.chunk_count equals its document_chunks rows (private.document_chunks_count)."""
    for company, document, stored, actual in conn.execute(CHUNKS_SQL).fetchall():
        c, d = _literal(company), _literal(document)
        count = (f"select count(*) from public.document_chunks k where k.company_id = {c} "
                 f"and k.document_id = {d}")
        yield Finding(
            "error", "data.counter", f"public.documents {company}/{document} chunk_count",
            f"chunk_count is {stored}, the document has {actual} chunk(s)",
            hint=(f"begin; select 1 from public.documents where company_id = {c} and id = {d} for update; "
                  f"update public.documents set chunk_count = ({count}) where company_id = {c} and id = {d}; commit;"),
            query=(f"select d.chunk_count, ({count}) as chunks from public.documents d "
                   f"where d.company_id = {c} and d.id = {d}"))


# The usage rule (docs/rules.md, monthly-message-limit; schema/1060): every stored message is
# counted once, in the UTC month of the server clock when it was written (never of
# messages.created_at, which the writer reports); bot messages in message_count, all in
# total_message_count. Messages later move to the archive (still stored), go to cold storage
# or are deleted by retention (no longer stored); the usage rows are never decremented. So
# per company, over all months, stored (live + archive) <= counted; the month cannot be
# compared (created_at is not the month counted in).
USAGE_SQL = """
with live as (select company_id, count(*) as n, count(*) filter (where sender_type = 'bot') as bot
              from public.messages group by company_id),
     archived as (select company_id, count(*) as n, count(*) filter (where sender_type = 'bot') as bot
                  from archive.messages_archived group by company_id),
     counted as (select company_id, sum(total_message_count) as n, sum(message_count) as bot
                 from public.company_message_usage group by company_id)
select c.id::text,
       coalesce(l.n, 0) + coalesce(a.n, 0), coalesce(u.n, 0),
       coalesce(l.bot, 0) + coalesce(a.bot, 0), coalesce(u.bot, 0)
from public.companies c
left join live l on l.company_id = c.id
left join archived a on a.company_id = c.id
left join counted u on u.company_id = c.id
where coalesce(l.n, 0) + coalesce(a.n, 0) > coalesce(u.n, 0)
   or coalesce(l.bot, 0) + coalesce(a.bot, 0) > coalesce(u.bot, 0)
order by 1
"""


@data_check("data.usage")
def usage_counts_stored_messages(conn: psycopg.Connection) -> Iterator[Finding]:
    """Every message still stored (live or archived) was counted in company_message_usage:
    per company and over all months, stored <= counted, for all messages and for the bot
    messages the plan bills (retention and cold exports make stored < counted legitimately)."""
    for company, stored, counted, stored_bot, counted_bot in conn.execute(USAGE_SQL).fetchall():
        c = _literal(company)
        missing_total = max(stored - counted, 0)
        missing_bot = max(stored_bot - counted_bot, 0)
        yield Finding(
            "error", "data.usage", f"public.company_message_usage {company}",
            f"{stored} message(s) stored ({stored_bot} bot), only {counted} counted ({counted_bot} bot) "
            "over all months: messages were written without the usage trigger (triggers off, a copy)",
            hint=("the month they were written in is unknown (usage counts the server's month, not created_at): "
                  "book the difference in the current month, shard 0, after deciding whether to bill it: "
                  "insert into public.company_message_usage as u (company_id, month, shard, message_count, "
                  f"total_message_count) values ({c}, date_trunc('month', now() at time zone 'UTC')::date, 0, "
                  f"{max(missing_bot, 0)}, {max(missing_total, missing_bot)}) on conflict (company_id, month, shard) "
                  "do update set message_count = u.message_count + excluded.message_count, "
                  "total_message_count = u.total_message_count + excluded.total_message_count;"),
            query=(f"select (select count(*) from public.messages where company_id = {c}) "
                   f"+ (select count(*) from archive.messages_archived where company_id = {c}) as stored, "
                   f"(select sum(total_message_count) from public.company_message_usage where company_id = {c}) "
                   "as counted"))


# --- constraints and indexes --------------------------------------------------------------
NOT_VALID_SQL = """
select pg_catalog.format('%%I.%%I', n.nspname, c.relname), k.conname::text, k.contype::text,
       pg_catalog.pg_get_expr(k.conbin, k.conrelid), pg_catalog.pg_get_constraintdef(k.oid)
from pg_catalog.pg_constraint k
join pg_catalog.pg_namespace n on n.oid = k.connamespace
join pg_catalog.pg_class c on c.oid = k.conrelid
where not k.convalidated and n.nspname = any(%s) and k.conrelid <> 0
order by 1, 2
"""


@data_check("data.not_valid")
def constraints_validated(conn: psycopg.Connection) -> Iterator[Finding]:
    """A constraint added NOT VALID (an online migration's first step) holds for new rows
    only until VALIDATE CONSTRAINT runs: a check constraint is tested here against the old
    rows (error when one breaks it, warning otherwise); a foreign key's old rows are tested
    by data.orphan."""
    for table, name, kind, expr, definition in conn.execute(NOT_VALID_SQL, (list(SCHEMAS),)).fetchall():
        validate = f"alter table {table} validate constraint {sql.Identifier(name).as_string(None)};"
        if kind == "c" and expr:
            query = f"select * from {table} where ({expr}) is false"
            n, timed_out = _count(conn, "data.not_valid", f"{table}.{name}", query)
            if timed_out:
                yield timed_out
                continue
            if n:
                yield Finding("error", "data.not_valid", f"{table}.{name}",
                              f"NOT VALID and {n} existing row(s) break it ({definition})",
                              hint=f"correct or delete those rows, then {validate}", query=query)
                continue
        else:
            query = f"select conname, convalidated from pg_constraint where conname = {_literal(name)}"
        yield Finding("warning", "data.not_valid", f"{table}.{name}",
                      f"left NOT VALID: the rows written before it was added were never checked ({definition})",
                      hint=f"{validate} (SHARE UPDATE EXCLUSIVE lock only: writes go on)", query=query)


@data_check("index.invalid")
def indexes_valid(conn: psycopg.Connection) -> Iterator[Finding]:
    """doctor's own check (doctor.indexes_are_valid), run here too: an invalid index is data
    health as much as schema health."""
    for finding in indexes_are_valid(conn):
        yield Finding(finding.level, finding.check, finding.object, finding.message,
                      hint=finding.hint or f"drop index concurrently {finding.object}; then create it again "
                      "(concurrently), or reindex index concurrently " + finding.object,
                      query="select indexrelid::regclass from pg_index where not indisvalid")


# --- orphans ------------------------------------------------------------------------------
FOREIGN_KEYS_SQL = """
select k.conname::text, pg_catalog.format('%%I.%%I', n.nspname, c.relname),
       (select pg_catalog.format('%%I.%%I', pn.nspname, p.relname) from pg_catalog.pg_class p
        join pg_catalog.pg_namespace pn on pn.oid = p.relnamespace where p.oid = k.confrelid),
       array(select a.attname::text from unnest(k.conkey) with ordinality x(n, i)
             join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = x.n order by x.i),
       array(select a.attname::text from unnest(k.confkey) with ordinality x(n, i)
             join pg_catalog.pg_attribute a on a.attrelid = k.confrelid and a.attnum = x.n order by x.i)
from pg_catalog.pg_constraint k
join pg_catalog.pg_namespace n on n.oid = k.connamespace
join pg_catalog.pg_class c on c.oid = k.conrelid
where k.contype = 'f' and n.nspname = any(%s) and not c.relispartition
order by 2, 1
"""


def _orphan_query(child: str, parent: str, cols: list[str], pcols: list[str], select: str) -> str:
    present = " and ".join(f"t.{sql.Identifier(col).as_string(None)} is not null" for col in cols)
    match = " and ".join(f"p.{sql.Identifier(pc).as_string(None)} = t.{sql.Identifier(col).as_string(None)}"
                         for col, pc in zip(cols, pcols, strict=True))
    return f"select {select} from {child} t where {present} and not exists (select 1 from {parent} p where {match})"


@data_check("data.orphan")
def rows_have_their_parents(conn: psycopg.Connection) -> Iterator[Finding]:
    """Every foreign key, live and archive (archived messages -> archived conversations,
    reactions -> messages, cold_exports -> job_runs, ...), tested against the rows: a row
    whose parent is gone was written or kept with the triggers off (session_replication_role
    = replica, a partial restore), since the key itself refuses it."""
    for name, child, parent, cols, pcols in conn.execute(FOREIGN_KEYS_SQL, (list(SCHEMAS),)).fetchall():
        n, timed_out = _count(conn, "data.orphan", f"{child}.{name}", _orphan_query(child, parent, cols, pcols, "1"))
        if timed_out:
            yield timed_out
        if n:
            keys = ", ".join(cols)
            yield Finding(
                "error", "data.orphan", f"{child}.{name}",
                f"{n} row(s) whose ({keys}) match no row of {parent}",
                hint=(f"restore the missing {parent} rows (from the archive, a cold export or a backup), or, if "
                      f"they are truly gone, delete the orphans: delete from {child} t where ({keys}) in "
                      f"(<the rows of the query>); (an active legal hold refuses the delete: release it first)"),
                query=_orphan_query(child, parent, cols, pcols, "t.*"))


# Live tables and their archive copies (functions/3310): a row is in one place at a time.
LIVE_AND_ARCHIVED = [
    ("public.conversations", "archive.conversations_archived"),
    ("public.messages", "archive.messages_archived"),
    ("public.message_reactions", "archive.message_reactions_archived"),
    ("public.hitl_escalations", "archive.hitl_escalations_archived"),
    ("public.knowledge_queries", "archive.knowledge_queries_archived"),
    ("public.integration_logs", "archive.integration_logs_archived"),
]


@data_check("data.duplicate")
def rows_live_or_archived(conn: psycopg.Connection) -> Iterator[Finding]:
    """The archive job moves a row (insert into the archive, delete from the live table) in
    one transaction: a row never is in both."""
    for live, archived in LIVE_AND_ARCHIVED:
        query = (f"select t.company_id, t.id from {live} t join {archived} a "
                 "on a.company_id = t.company_id and a.id = t.id")
        n, timed_out = _count(conn, "data.duplicate", live, query)
        if timed_out:
            yield timed_out
        if n:
            yield Finding(
                "error", "data.duplicate", live,
                f"{n} row(s) both live and in {archived}",
                hint=(f"compare the two copies; keep the live one and delete the archived copy "
                      f"(delete from {archived} a using {live} t where a.company_id = t.company_id "
                      "and a.id = t.id), or the reverse if the archive's is the later"),
                query=query)


HOLDS_SQL = """
select h.company_id::text, h.id::text, h.conversation_id::text
from public.legal_holds h
where h.released_at is null and h.conversation_id is not null
  and not exists (select 1 from public.conversations c
                  where c.company_id = h.company_id and c.id = h.conversation_id)
  and not exists (select 1 from archive.conversations_archived a
                  where a.company_id = h.company_id and a.id = h.conversation_id)
order by 1, 2
"""


@data_check("data.legal_hold")
def legal_holds_point_at_data(conn: psycopg.Connection) -> Iterator[Finding]:
    """An active hold on a conversation names one that is live or archived. (legal_holds has
    no FK: the conversation moves.) A conversation exported to cold storage is in neither;
    the database does not list an export's conversations, so when an export exists the
    finding is a warning to check the manifests, else an error."""
    row = conn.execute("select exists (select 1 from private.cold_exports where status = 'deleted')").fetchone()
    exported = bool(row and row[0])
    for company, hold, conversation in conn.execute(HOLDS_SQL).fetchall():
        c, v = _literal(company), _literal(conversation)
        yield Finding(
            "warning" if exported else "error", "data.legal_hold", f"public.legal_holds {company}/{hold}",
            f"active hold on conversation {conversation}, which is neither live nor archived"
            + (" (it may be in a cold export)" if exported else " (and no cold export holds rows)"),
            hint=("if a cold export holds it (grep its id in the exports' files), restore that export "
                  "(neurant-db archive restore) so the hold covers rows again; if the id was mistyped, set a new "
                  "hold on the right conversation and release this one (update public.legal_holds set "
                  f"released_at = now(), released_by = '<who>' where company_id = {c} and id = {_literal(hold)})"),
            query=(f"select (select count(*) from public.conversations where company_id = {c} and id = {v}) as live, "
                   f"(select count(*) from archive.conversations_archived where company_id = {c} and id = {v}) "
                   "as archived"))


COLD_SQL = """
select e.id::text, e.status, e.restored_at is not null, e.job_run_id is not null,
       coalesce((select r.job from private.job_runs r where r.id = e.job_run_id), '')
from private.cold_exports e
where (e.status = 'restored') <> (e.restored_at is not null)
   or exists (select 1 from private.job_runs r where r.id = e.job_run_id and r.job <> 'cold-export')
order by e.created_at, e.id
"""


@data_check("data.cold_export")
def cold_exports_consistent(conn: psycopg.Connection) -> Iterator[Finding]:
    """The cold-export ledger: restored exactly when restored_at is set, and written by a
    cold-export run (its job_run_id pointing at nothing is data.orphan's)."""
    for export, status, restored, _has_run, job in conn.execute(COLD_SQL).fetchall():
        e = _literal(export)
        query = f"select * from private.cold_exports where id = {e}"
        if (status == "restored") != restored:
            yield Finding(
                "error", "data.cold_export", f"private.cold_exports {export}",
                f"status {status} but restored_at is {'set' if restored else 'null'}",
                hint=("check whether the export's rows are in the archive (archive.conversations_archived): if they "
                      f"are, update private.cold_exports set status = 'restored', restored_at = coalesce(restored_at, "
                      f"now()) where id = {e}; if not, set status = 'deleted', restored_at = null"),
                query=query)
        if job and job != "cold-export":
            yield Finding(
                "error", "data.cold_export", f"private.cold_exports {export}",
                f"recorded by a {job} run, not a cold-export run",
                hint=("find the run that wrote the export (its location's manifest.json names it) "
                      "and correct job_run_id"),
                query=query)


# --- amcheck ------------------------------------------------------------------------------
BTREE_SQL = """
select c.oid, pg_catalog.format('%%I.%%I', n.nspname, c.relname)
from pg_catalog.pg_index i
join pg_catalog.pg_class c on c.oid = i.indexrelid
join pg_catalog.pg_class t on t.oid = i.indrelid
join pg_catalog.pg_am am on am.oid = c.relam
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where am.amname = 'btree' and i.indisvalid and i.indisready and n.nspname = any(%s)
  and t.relpersistence <> 't'
order by 2
"""


@data_check("data.amcheck")
def btree_indexes_intact(conn: psycopg.Connection) -> Iterator[Finding]:
    """amcheck's bt_index_check on every valid B-tree index (ACCESS SHARE lock, like a
    SELECT: not bt_index_parent_check, which blocks writes); each index in a savepoint, so
    a corrupt or slow one is reported and the rest still checked. Skipped, with an info
    finding, where the extension is not installed."""
    row = conn.execute("select n.nspname from pg_catalog.pg_extension e "
                       "join pg_catalog.pg_namespace n on n.oid = e.extnamespace "
                       "where e.extname = 'amcheck'").fetchone()
    if not row:
        yield Finding("info", "data.amcheck", "amcheck",
                      "extension amcheck is not installed: B-tree indexes not checked",
                      hint="create extension amcheck; (contrib, shipped with PostgreSQL) to have them checked",
                      query="select * from pg_extension where extname = 'amcheck'")
        return
    schema = sql.Identifier(row[0]).as_string(None)
    for oid, index in conn.execute(BTREE_SQL, (list(SCHEMAS),)).fetchall():
        query = f"select {schema}.bt_index_check({_literal(index)}::regclass)"
        try:
            with conn.transaction():
                conn.execute(f"select {schema}.bt_index_check(%s::oid::regclass)", (oid,))
        except (errors.QueryCanceled, errors.LockNotAvailable) as exc:
            yield Finding("warning", "data.amcheck", index, f"not checked: {exc.diag.message_primary}",
                          hint="run it off-peak with a larger --statement-timeout", query=query)
        except errors.InsufficientPrivilege as exc:
            yield Finding("warning", "data.amcheck", index, f"not checked: {exc.diag.message_primary}",
                          hint="run doctor --data as a superuser or a role granted execute on bt_index_check",
                          query=query)
            return
        except psycopg.Error as exc:
            yield Finding("error", "data.amcheck", index, f"bt_index_check failed: {exc.diag.message_primary}",
                          hint=f"reindex index concurrently {index}; then find out why (storage, a collation "
                          "change of the operating system's libc/ICU)", query=query)


# --- the runner ---------------------------------------------------------------------------
def run_data_checks(conn: psycopg.Connection,
                    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS) -> list[Finding]:
    """Every data check, each in its own READ ONLY, REPEATABLE READ transaction with
    statement_timeout and lock_timeout set locally; a check that does not finish gives a
    warning finding (what it found before stays). `conn` must be in autocommit mode."""
    if not conn.autocommit:
        raise ValueError("run_data_checks needs an autocommit connection (each check opens its own transaction)")
    timeout = int(statement_timeout_ms)
    findings: list[Finding] = []
    for name, fn in DATA_CHECKS:
        found: list[Finding] = []
        try:
            with conn.transaction():
                conn.execute("set transaction isolation level repeatable read, read only")
                conn.execute(f"set local statement_timeout = {timeout}")
                conn.execute(f"set local lock_timeout = {timeout}")
                for finding in fn(conn):
                    found.append(finding)
        except (errors.QueryCanceled, errors.LockNotAvailable) as exc:
            found.append(Finding("warning", name, fn.__name__,
                                 f"did not finish within statement_timeout = {timeout} ms "
                                 f"({exc.diag.message_primary}): not checked",
                                 hint="run it off-peak with a larger --statement-timeout"))
        except psycopg.Error as exc:
            found.append(Finding("warning", name, fn.__name__,
                                 f"could not run: {exc.diag.message_primary or exc}",
                                 hint="run doctor --data as the migration owner (it reads every tenant's rows)"))
        findings.extend(found)
    return findings
