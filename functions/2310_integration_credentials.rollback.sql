-- Why: undoes 2310_integration_credentials.sql.
drop function if exists public.clear_integration_credentials(uuid);
drop function if exists public.set_integration_credentials(uuid, bytea, text);
{%- if profile == 'citus' %}
drop function if exists private.clear_integration_credentials(uuid, uuid);
drop function if exists private.set_integration_credentials(uuid, uuid, bytea, text);
{%- endif %}
