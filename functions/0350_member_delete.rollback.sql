-- Why: undoes 0350_member_delete.sql. The role neurant_member_delete is cluster-wide and
-- stays (other databases of the server may use it); its table grants went with the tables'
-- RLS headers.
drop function public.delete_rows(text, jsonb);
drop function private.delete_rows(text, jsonb);
revoke authenticated from neurant_member_delete;
