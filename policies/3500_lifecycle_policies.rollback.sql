-- Why: undoes 3500_lifecycle_policies.sql (policies, RLS flags and grants of the lifecycle tables).
{% from 'policies/_read_only.sql' import drop_read_only_when_inactive %}
{{ drop_read_only_when_inactive('public.legal_holds') }}
{{ drop_read_only_when_inactive('archive.analytics_archived') }}
{{ drop_read_only_when_inactive('archive.integration_logs_archived') }}
{{ drop_read_only_when_inactive('archive.knowledge_queries_archived') }}
{{ drop_read_only_when_inactive('archive.hitl_escalations_archived') }}
{{ drop_read_only_when_inactive('archive.message_reactions_archived') }}
{{ drop_read_only_when_inactive('archive.messages_archived') }}
{{ drop_read_only_when_inactive('archive.conversations_archived') }}

revoke all on sequence private.job_runs_id_seq from service_role;
drop policy deny_members on private.cold_exports;
revoke all on table private.cold_exports from service_role;
alter table private.cold_exports no force row level security;
alter table private.cold_exports disable row level security;
drop policy deny_members on private.job_runs;
revoke all on table private.job_runs from service_role;
alter table private.job_runs no force row level security;
alter table private.job_runs disable row level security;
drop policy select_as_admin on public.legal_holds;
revoke all on table public.legal_holds from authenticated, service_role;
alter table public.legal_holds no force row level security;
alter table public.legal_holds disable row level security;
drop policy select_as_admin on archive.analytics_archived;
revoke all on table archive.analytics_archived from authenticated, service_role;
alter table archive.analytics_archived no force row level security;
alter table archive.analytics_archived disable row level security;
drop policy select_as_admin on archive.integration_logs_archived;
revoke all on table archive.integration_logs_archived from authenticated, service_role;
alter table archive.integration_logs_archived no force row level security;
alter table archive.integration_logs_archived disable row level security;
drop policy select_as_admin on archive.knowledge_queries_archived;
revoke all on table archive.knowledge_queries_archived from authenticated, service_role;
alter table archive.knowledge_queries_archived no force row level security;
alter table archive.knowledge_queries_archived disable row level security;
drop policy select_as_admin on archive.hitl_escalations_archived;
revoke all on table archive.hitl_escalations_archived from authenticated, service_role;
alter table archive.hitl_escalations_archived no force row level security;
alter table archive.hitl_escalations_archived disable row level security;
drop policy select_as_admin on archive.message_reactions_archived;
revoke all on table archive.message_reactions_archived from authenticated, service_role;
alter table archive.message_reactions_archived no force row level security;
alter table archive.message_reactions_archived disable row level security;
drop policy select_as_admin on archive.messages_archived;
revoke all on table archive.messages_archived from authenticated, service_role;
alter table archive.messages_archived no force row level security;
alter table archive.messages_archived disable row level security;
drop policy select_as_admin on archive.conversations_archived;
revoke all on table archive.conversations_archived from authenticated, service_role;
alter table archive.conversations_archived no force row level security;
alter table archive.conversations_archived disable row level security;
