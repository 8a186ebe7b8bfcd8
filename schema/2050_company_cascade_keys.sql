-- Why: every tenant table gets its own (company_id) -> companies FK with ON DELETE
-- CASCADE. Deleting a company then removes every tenant row at the first level of
-- the cascade, before the NO ACTION checks of deleted users run (a table reached
-- only through a chain, e.g. chatbots -> chatbot_operators, would still hold rows
-- pointing at the deleted users when those checks fire). It is also the key Citus
-- co-locates on. audit_logs is left out on purpose: the trail outlives the tenant.
alter table public.chatbot_operators add constraint chatbot_operators_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table public.conversations add constraint conversations_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table public.messages add constraint messages_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table public.message_reactions add constraint message_reactions_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table public.hitl_escalations add constraint hitl_escalations_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table public.document_chunks add constraint document_chunks_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table public.knowledge_queries add constraint knowledge_queries_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table public.analytics_daily add constraint analytics_daily_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table private.integration_credentials add constraint integration_credentials_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
alter table public.integration_logs add constraint integration_logs_company_fkey
  foreign key (company_id) references public.companies (id) on delete cascade;
