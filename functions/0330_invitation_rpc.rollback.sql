-- Why: undoes 0330_invitation_rpc.sql.
drop function public.revoke_invitation(uuid);
drop function public.accept_invitation(text);
drop function public.create_invitation(text, public.user_role);
{%- if profile == 'citus' %}
drop function private.revoke_invitation(uuid, uuid);
drop function private.create_invitation(uuid, text, public.user_role);
{%- endif %}
