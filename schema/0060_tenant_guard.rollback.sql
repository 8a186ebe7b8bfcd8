-- Why: undoes 0060_tenant_guard.sql (the tables' guard triggers go with their tables;
-- audit_logs' guards, attached here, are dropped here).
drop trigger audit_logs_0_tenant_key on public.audit_logs;
drop trigger audit_logs_0_tenant_guard on public.audit_logs;
drop function private.reject_other_tenant_insert();
