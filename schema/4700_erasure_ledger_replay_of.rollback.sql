-- Why: undoes 4700_erasure_ledger_replay_of.sql (the replayed rows stay, as plain requests).
alter table private.erasure_ledger drop column replay_of;
