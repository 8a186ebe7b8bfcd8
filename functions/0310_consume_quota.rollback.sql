-- Why: undoes 0310_consume_quota.sql.
drop function private.consume_quota(uuid, text, bigint);
