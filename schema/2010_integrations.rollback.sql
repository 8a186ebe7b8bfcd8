-- Why: undoes 2010_integrations.sql (integration tables, credentials, triggers, types).
drop trigger if exists users_clear_integration_references on public.users;
drop table if exists public.integration_logs;
drop table if exists private.integration_credentials;
drop table if exists public.integrations;
drop function if exists private.clear_user_integration_references();
drop function if exists private.integration_credentials_sync();
drop function if exists private.integration_credentials_before_write();
drop function if exists private.integrations_quota();
drop function if exists private.integrations_before_write();
drop type if exists public.integration_log_status;
drop type if exists public.integration_direction;
drop type if exists public.integration_status;
drop type if exists public.integration_type;
