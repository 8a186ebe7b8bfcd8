-- Why: RLS and grants of analytics (docs/access-matrix.md): analytics_daily -
-- every role of the company reads, operador only its assigned chatbots, only
-- service_role jobs write; system_metrics - platform-wide, service_role only.

alter table public.analytics_daily enable row level security;
alter table public.analytics_daily force row level security;
alter table public.system_metrics enable row level security;
alter table public.system_metrics force row level security;

revoke all on table public.analytics_daily, public.system_metrics
  from public, anon, authenticated, service_role;

grant select on table public.analytics_daily to authenticated;
grant all on table public.analytics_daily to service_role;

grant all on table public.system_metrics to service_role;
grant usage, select on sequence public.system_metrics_id_seq to service_role;

create policy select_own_company_by_role on public.analytics_daily
  for select to authenticated
  using (company_id = (select public.get_user_company_id())
         and chatbot_id = any ((select public.get_visible_chatbot_ids())::uuid[]));
comment on policy select_own_company_by_role on public.analytics_daily is
  'Owner/administrador/supervisor read all of the company''s analytics; operador only rows of assigned chatbots. Writes: service_role jobs only.';

-- public.system_metrics: RLS enabled and forced with no policy: anon and
-- authenticated see nothing even if a grant slipped in; service_role bypasses.
create policy deny_members on public.system_metrics
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on public.system_metrics is
  'Platform-wide metrics are for the operators of NeurAnt (service_role) only; no tenant role reads or writes them.';

-- Read-only tenants: a suspended or canceled company writes nothing (policies/_read_only.sql).
{% from 'policies/_read_only.sql' import read_only_when_inactive %}
{{ read_only_when_inactive('public.analytics_daily') }}
