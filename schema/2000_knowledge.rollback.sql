-- Why: undoes 2000_knowledge.sql (knowledge tables, their triggers and trigger functions).
drop trigger if exists users_clear_documents_references on public.users;
drop table if exists public.knowledge_queries;
drop table if exists public.document_chunks;
drop table if exists public.documents;
drop function if exists private.knowledge_queries_before_write();
drop function if exists private.document_chunks_before_update();
drop function if exists private.document_chunks_count();
drop function if exists private.documents_quota();
drop function if exists private.documents_before_write();
drop type if exists public.document_status;
