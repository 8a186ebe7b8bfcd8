-- Why: undoes 0060_tenant_guard.sql (the tables' guard triggers go with their tables).
drop function private.reject_other_tenant_insert();
