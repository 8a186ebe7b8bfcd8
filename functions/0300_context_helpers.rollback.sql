-- Why: undoes 0300_context_helpers.sql.
drop function private.require_company_writable();
drop function private.require_company_writable(uuid);
revoke usage on schema private from authenticated, service_role;
drop function private.caller_is_subject_to_rls();
drop function private.get_user_role();
drop function private.get_user_company_id();
drop function private.get_current_user_id();
{% if profile == 'citus' -%}
drop function private.caller_membership();
drop function private.local_placement(regclass, uuid);
drop cast (text as public.user_role);
drop function private.user_role_from_text(text);
{% endif -%}
drop function public.role_rank(public.user_role);
