-- Why: undoes 1060_company_message_usage.sql.
drop function private.record_message_usage(uuid, bigint, bigint);
drop table public.company_message_usage;
