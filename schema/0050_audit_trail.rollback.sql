-- Why: undoes 0050_audit_trail.sql. Dropping the table discards the audit trail: only
-- run this on a database whose audit history is not needed (or exported).
drop table if exists public.audit_logs;
drop function if exists private.audit_row_change();
drop function if exists private.audit_redact(jsonb);
drop function if exists private.jsonb_has_secret_values(jsonb);
drop function if exists private.text_looks_like_secret(text);
drop function if exists private.jsonb_has_secret_keys(jsonb);
drop function if exists private.audit_logs_append_only();
{% if profile == 'citus' -%}
drop function if exists private.transaction_token();
{% endif -%}
drop type if exists public.audit_action;
