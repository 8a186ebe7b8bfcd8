-- Why: undoes 2050_company_cascade_keys.sql.
alter table public.chatbot_operators drop constraint chatbot_operators_company_fkey;
alter table public.conversations drop constraint conversations_company_fkey;
alter table public.messages drop constraint messages_company_fkey;
alter table public.message_reactions drop constraint message_reactions_company_fkey;
alter table public.hitl_escalations drop constraint hitl_escalations_company_fkey;
alter table public.document_chunks drop constraint document_chunks_company_fkey;
alter table public.knowledge_queries drop constraint knowledge_queries_company_fkey;
alter table public.analytics_daily drop constraint analytics_daily_company_fkey;
alter table private.integration_credentials drop constraint integration_credentials_company_fkey;
alter table public.integration_logs drop constraint integration_logs_company_fkey;
