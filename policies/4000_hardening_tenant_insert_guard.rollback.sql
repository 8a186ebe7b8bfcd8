-- Rollback of 4000_hardening_tenant_insert_guard: remove the first-firing tenant guards.
drop trigger if exists integrations_0_tenant_guard on public.integrations;
drop trigger if exists document_chunks_0_tenant_guard on public.document_chunks;
drop trigger if exists documents_0_tenant_guard on public.documents;
drop trigger if exists message_reactions_0_tenant_guard on public.message_reactions;
drop trigger if exists messages_0_tenant_guard on public.messages;
drop trigger if exists conversations_0_tenant_guard on public.conversations;
drop trigger if exists chatbot_operators_0_tenant_guard on public.chatbot_operators;
drop trigger if exists chatbots_0_tenant_guard on public.chatbots;
drop function if exists private.reject_other_tenant_insert();
