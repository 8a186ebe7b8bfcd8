-- Why: undoes 4705_erasure_ledger_replay_of_key.sql.
-- neurant: no-transaction
drop index concurrently if exists private.erasure_ledger_replay_of_key;
