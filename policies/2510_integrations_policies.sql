-- Why: RLS and grants of the integrations domain (docs/access-matrix.md):
-- integrations (config) - owner/administrador full, supervisor/operador
-- nothing; credentials - no privilege at all for anon/authenticated (written
-- through public.set_integration_credentials, read only by service_role);
-- integration logs - written by service_role, read by owner/administrador.

{% from 'policies/_rls.sql' import rls -%}
{{ rls('public.integrations') }}
{{ rls('private.integration_credentials') }}
{{ rls('public.integration_logs') }}
-- (usage on schema private is granted to service_role by the tenancy domain.)

-- integrations -----------------------------------------------------------
create policy select_as_admin on public.integrations
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
create policy insert_as_admin on public.integrations
  for insert to authenticated
  with check (company_id = (select private.get_user_company_id())
              and (select private.get_user_role()) in ('owner', 'administrador'));
create policy update_as_admin on public.integrations
  for update to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'))
  with check (company_id = (select private.get_user_company_id()));
create policy delete_as_admin on public.integrations
  for delete to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));

comment on policy select_as_admin on public.integrations is 'Owner/administrador read their company''s integrations (config, has_credentials; never the credentials).';
comment on policy insert_as_admin on public.integrations is 'Owner/administrador create integrations in their company (plan limit by trigger).';
comment on policy update_as_admin on public.integrations is 'Owner/administrador change name/config/status of their company''s integrations.';
comment on policy delete_as_admin on public.integrations is 'Owner/administrador delete their company''s integrations (credentials and logs go with them).';

-- integration_logs ---------------------------------------------------------
create policy select_as_admin on public.integration_logs
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on public.integration_logs is 'Owner/administrador read their company''s integration call log; only service_role writes it.';

-- private.integration_credentials: RLS enabled and forced with no policy for
-- anon/authenticated: only BYPASSRLS roles (service_role, the owner of the
-- security definer RPCs) ever reach a row.
-- The explicit deny states that intent in the catalog (doctor requires a policy).
create policy deny_members on private.integration_credentials
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on private.integration_credentials is
  'Nobody but BYPASSRLS roles (service_role, the owner of the credential RPCs) reaches a row: members write through set_integration_credentials() and never read.';
