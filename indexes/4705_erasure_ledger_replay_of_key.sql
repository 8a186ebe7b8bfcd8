-- Why: domain lifecycle (GDPR Art. 17, issue 24), index private.erasure_ledger_replay_of_key
-- (new; supersedes nothing). A request is replayed at most once per company, however often or
-- concurrently `erase --replay-from` runs (private.erasure_replay, functions/4710).
-- neurant: no-transaction
create unique index concurrently if not exists erasure_ledger_replay_of_key
  on private.erasure_ledger (company_id, replay_of) where replay_of is not null;
comment on index private.erasure_ledger_replay_of_key is
  'A request is replayed at most once per company (private.erasure_replay finds it here and does nothing the second time).';
