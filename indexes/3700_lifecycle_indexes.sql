-- Why: access paths of the lifecycle jobs (eligible rows found per company by age, with
-- company_id first), the foreign keys of the archive tables, and the reads of the archive
-- and of the roll-up over archived rows (same shapes as the live tables).

create index conversations_closed_at_idx on public.conversations (company_id, closed_at) where status = 'closed';
comment on index public.conversations_closed_at_idx is 'Lifecycle: closed conversations of a company by age (archive and retention jobs).';

create index system_metrics_recorded_at_idx on public.system_metrics (recorded_at);
comment on index public.system_metrics_recorded_at_idx is 'Lifecycle: samples by age (retention after 400 days).';

create index legal_holds_active_idx on public.legal_holds (company_id, conversation_id) where released_at is null;
comment on index public.legal_holds_active_idx is 'Active holds of a company / conversation: checked by every lifecycle job and the hold triggers.';

create index job_runs_job_started_at_idx on private.job_runs (job, started_at desc);
comment on index private.job_runs_job_started_at_idx is 'Latest runs of a job (`neurant-db jobs status`).';
create index cold_exports_job_run_idx on private.cold_exports (job_run_id);
comment on index private.cold_exports_job_run_idx is 'FK cold_exports -> job_runs.';

create index conversations_archived_closed_at_idx on archive.conversations_archived (company_id, closed_at);
comment on index archive.conversations_archived_closed_at_idx is 'Archived conversations of a company by age (cold export, retention).';
create index conversations_archived_chatbot_time_idx on archive.conversations_archived (company_id, chatbot_id, created_at);
comment on index archive.conversations_archived_chatbot_time_idx is 'Archived conversations of a chatbot by creation time (roll-up, reads).';

create index messages_archived_conversation_idx on archive.messages_archived (company_id, conversation_id, chatbot_id, created_at);
comment on index archive.messages_archived_conversation_idx is 'FK messages_archived -> conversations_archived; transcript of an archived conversation.';
create index messages_archived_chatbot_time_idx on archive.messages_archived (company_id, chatbot_id, created_at);
comment on index archive.messages_archived_chatbot_time_idx is 'Archived messages of a chatbot by time (roll-up over archived days).';

create index message_reactions_archived_message_idx on archive.message_reactions_archived (company_id, message_id, conversation_id, chatbot_id);
comment on index archive.message_reactions_archived_message_idx is 'FK message_reactions_archived -> messages_archived.';
create index message_reactions_archived_chatbot_time_idx on archive.message_reactions_archived (company_id, chatbot_id, created_at);
comment on index archive.message_reactions_archived_chatbot_time_idx is 'Archived reactions of a chatbot by time (roll-up).';

create index hitl_escalations_archived_conversation_idx on archive.hitl_escalations_archived (company_id, conversation_id, chatbot_id);
comment on index archive.hitl_escalations_archived_conversation_idx is 'FK hitl_escalations_archived -> conversations_archived.';
create index hitl_escalations_archived_chatbot_time_idx on archive.hitl_escalations_archived (company_id, chatbot_id, created_at);
comment on index archive.hitl_escalations_archived_chatbot_time_idx is 'Archived escalations of a chatbot by time (roll-up).';

create index knowledge_queries_archived_message_idx on archive.knowledge_queries_archived (company_id, message_id, conversation_id, chatbot_id);
comment on index archive.knowledge_queries_archived_message_idx is 'FK knowledge_queries_archived -> messages_archived.';
create index knowledge_queries_archived_chatbot_time_idx on archive.knowledge_queries_archived (company_id, chatbot_id, created_at);
comment on index archive.knowledge_queries_archived_chatbot_time_idx is 'Archived retrievals of a chatbot by time (roll-up).';

create index integration_logs_archived_created_at_idx on archive.integration_logs_archived (company_id, created_at);
comment on index archive.integration_logs_archived_created_at_idx is 'Archived integration logs of a company by age (cold export, retention).';

create index analytics_archived_day_idx on archive.analytics_archived (company_id, day);
comment on index archive.analytics_archived_day_idx is 'Archived analytics of a company by day (cold export, retention, dashboards).';
