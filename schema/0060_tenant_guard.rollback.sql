-- Why: undoes 0060_tenant_guard.sql (the tables' guard triggers go with their tables;
-- audit_logs' guards, attached here, are dropped here).
{% from 'schema/_tenant_guard.sql' import drop_tenant_guard -%}
{{ drop_tenant_guard('public.audit_logs') }}
drop function private.reject_other_tenant_insert();
