-- Why: RLS and grants of analytics (docs/access-matrix.md): analytics_daily -
-- every role of the company reads, operador only its assigned chatbots, only
-- service_role jobs write; system_metrics - platform-wide, service_role only.

{% from 'policies/_rls.sql' import rls -%}
{{ rls('public.analytics_daily') }}
{{ rls('public.system_metrics') }}
grant usage, select on sequence public.system_metrics_id_seq to service_role;

create policy select_own_company_by_role on public.analytics_daily
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
         and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[]));
comment on policy select_own_company_by_role on public.analytics_daily is
  'Owner/administrador/supervisor read all of the company''s analytics; operador only rows of assigned chatbots. Writes: service_role jobs only.';

-- public.system_metrics: RLS enabled and forced with no policy: anon and
-- authenticated see nothing even if a grant slipped in; service_role bypasses.
create policy deny_members on public.system_metrics
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on public.system_metrics is
  'Platform-wide metrics are for the operators of NeurAnt (service_role) only; no tenant role reads or writes them.';
