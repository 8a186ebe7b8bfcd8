-- Why: undoes 2310_integration_credentials.sql.
drop function if exists public.clear_integration_credentials(uuid);
drop function if exists public.set_integration_credentials(uuid, bytea, text);
