-- Why: domain lifecycle (GDPR Art. 17, issue 24), object private.erasure_ledger, new column
-- replay_of (supersedes nothing; the table is
-- 4200_erasure_ledger.sql's). A backup or a tenant export taken before an erasure brings the
-- end user back when restored or imported; `neurant-db erase --replay-from` (and tenant
-- import, restore-check) carry out again every request of the newer ledger the target lacks
-- (private.erasure_replay, functions/4710). The row it writes names the request it replays:
-- the id of the original ledger row, a random uuid, no personal data. Its unique index:
-- indexes/4705.
alter table private.erasure_ledger add column replay_of uuid;
comment on column private.erasure_ledger.replay_of is
  'The original request (its ledger id in the database it was made in) this row carries out again after a restore or an import (private.erasure_replay); null for a request made here.';
