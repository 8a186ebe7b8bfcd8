-- Why: indexes of the knowledge domain: every FK and policy column with
-- company_id first, the ingestion queue, and the HNSW vector index used by
-- public.match_document_chunks (cosine distance; see that function for why a
-- single global HNSW index plus the company filter was chosen).

create index documents_company_uploaded_by_idx
  on public.documents (company_id, uploaded_by) where uploaded_by is not null;
comment on index public.documents_company_uploaded_by_idx is 'FK (company_id, uploaded_by) -> users; used when a user is deleted.';

create index documents_company_created_at_idx
  on public.documents (company_id, created_at desc);
comment on index public.documents_company_created_at_idx is 'Document list of a company, newest first.';

create index documents_pending_ingestion_idx
  on public.documents (created_at) where status in ('uploaded', 'processing');
comment on index public.documents_pending_ingestion_idx is 'Ingestion work queue across companies (small partial index: only unfinished documents).';

-- document_chunks (company_id, document_id) is covered by document_chunks_document_chunk_index_key.
create index document_chunks_embedding_hnsw_idx
  on public.document_chunks using hnsw (embedding {{ vector_schema }}.vector_cosine_ops)
  with (m = 16, ef_construction = 64);
comment on index public.document_chunks_embedding_hnsw_idx is
  'HNSW (cosine) index for top-k search; combined with the company_id filter (iterative scan on pgvector >= 0.8).';

create index knowledge_queries_company_message_idx
  on public.knowledge_queries (company_id, message_id, conversation_id, chatbot_id);
comment on index public.knowledge_queries_company_message_idx is 'FK (company_id, message_id, conversation_id, chatbot_id) -> messages (cascade on message delete).';
create index knowledge_queries_company_chatbot_created_at_idx
  on public.knowledge_queries (company_id, chatbot_id, created_at desc);
comment on index public.knowledge_queries_company_chatbot_created_at_idx is 'Operador policy column (chatbot_id) and the per-chatbot daily roll-up.';
create index knowledge_queries_company_chunk_idx
  on public.knowledge_queries (company_id, chunk_id);
comment on index public.knowledge_queries_company_chunk_idx is 'FK (company_id, chunk_id) -> document_chunks; chunk usage analytics.';
create index knowledge_queries_company_document_created_at_idx
  on public.knowledge_queries (company_id, document_id, created_at desc);
comment on index public.knowledge_queries_company_document_created_at_idx is 'FK (company_id, document_id) -> documents; document usage over time.';
