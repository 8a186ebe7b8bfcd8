-- Why: undoes 2700_knowledge_indexes.sql.
drop index if exists public.knowledge_queries_company_document_created_at_idx;
drop index if exists public.knowledge_queries_company_chunk_idx;
drop index if exists public.knowledge_queries_company_chatbot_created_at_idx;
drop index if exists public.knowledge_queries_company_message_idx;
drop index if exists public.document_chunks_embedding_hnsw_idx;
drop index if exists public.documents_pending_ingestion_idx;
drop index if exists public.documents_company_created_at_idx;
drop index if exists public.documents_company_uploaded_by_idx;
