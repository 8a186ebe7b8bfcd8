-- Why: the RAG top-k search (architecture section 4) as an RPC that runs with
-- the caller's rights (security invoker: RLS of public.document_chunks
-- applies) and also filters company_id explicitly, so the planner can combine
-- the company filter with the HNSW index.
--
-- HNSW + tenant filter, the decision: one global HNSW index
-- (document_chunks_embedding_hnsw_idx, vector_cosine_ops) plus the plain
-- company_id filter, no per-company partial indexes (one DDL per tenant does
-- not scale to hundreds of tenants and is not possible inside RLS-only
-- provisioning). An HNSW scan returns the ef_search nearest rows of ALL
-- companies and the filter runs afterwards, so a small company could get fewer
-- than k rows. Two mechanisms cover that:
--   * pgvector >= 0.8: the function turns on hnsw.iterative_scan
--     (relaxed_order) for its own query only, so the scan continues until k
--     rows of the company are found (bounded by hnsw.max_scan_tuples), and
--     re-sorts the k rows exactly;
--   * any version: for a company with few chunks the planner prefers the
--     btree (company_id, document_id, chunk_index) index + an exact sort,
--     which has perfect recall and costs little for small tenants.
-- The similarity threshold is applied to the top-k rows (they are already
-- ordered by distance, so this equals "top-k among the rows above the
-- threshold") instead of inside the index scan, where it would turn a
-- cut-off into a scan of hnsw.max_scan_tuples rows.

create function public.match_document_chunks(
  p_query_embedding {{ vector_schema }}.vector,
  p_match_count integer default 5,
  p_min_similarity double precision default 0
)
returns table (
  chunk_id       uuid,
  document_id    uuid,
  document_title text,
  chunk_index    integer,
  content        text,
  metadata       jsonb,
  similarity     double precision
)
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_company_id uuid := (select private.get_user_company_id());
begin
  return query
  select * from public.match_document_chunks_for_company(v_company_id, p_query_embedding, p_match_count, p_min_similarity);
end;
$$;

create function public.match_document_chunks_for_company(
  p_company_id uuid,
  p_query_embedding {{ vector_schema }}.vector,
  p_match_count integer default 5,
  p_min_similarity double precision default 0
)
returns table (
  chunk_id       uuid,
  document_id    uuid,
  document_title text,
  chunk_index    integer,
  content        text,
  metadata       jsonb,
  similarity     double precision
)
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  -- doctor: allow setting.read hnsw.iterative_scan the caller's planner knob, saved to be restored; decides nothing
  -- doctor: allow setting.read hnsw.ef_search the caller's planner knob, saved to be restored; decides nothing
  v_iterative text := current_setting('hnsw.iterative_scan', true);
  v_ef_search text := current_setting('hnsw.ef_search', true);
begin
  if p_query_embedding is null then
    raise exception using errcode = '22023',
      message = 'p_query_embedding is required',
      hint = 'Pass the embedding of the user question.';
  end if;
  if p_match_count is null or p_match_count not between 1 and 100 then
    raise exception using errcode = '22023',
      message = format('p_match_count must be between 1 and 100, got %s', p_match_count),
      hint = 'Ask for at most 100 chunks.';
  end if;
  if p_min_similarity is null or p_min_similarity not between -1 and 1 then
    raise exception using errcode = '22023',
      message = format('p_min_similarity must be between -1 and 1, got %s', p_min_similarity),
      hint = 'Cosine similarity is 1 - cosine distance.';
  end if;
  if p_company_id is null then
    return;  -- caller is not a member of any company: nothing to search
  end if;

  -- Settings are local to the transaction and restored below, so the caller's
  -- session keeps its own values. A GUC that does not exist (pgvector < 0.8)
  -- reads as null and is left alone.
  if v_iterative is not null then
    perform pg_catalog.set_config('hnsw.iterative_scan', 'relaxed_order', true);
  end if;
  if v_ef_search is not null and v_ef_search::integer < p_match_count then
    perform pg_catalog.set_config('hnsw.ef_search', p_match_count::text, true);
  end if;

  return query
  with nearest as materialized (
    select ch.id, ch.document_id, ch.chunk_index, ch.content, ch.metadata,
           ch.embedding operator({{ vector_schema }}.<=>) p_query_embedding as distance
      from public.document_chunks ch
     where ch.company_id = p_company_id
     order by ch.embedding operator({{ vector_schema }}.<=>) p_query_embedding
     limit p_match_count
  )
  select n.id, n.document_id, d.title, n.chunk_index, n.content, n.metadata,
         (1 - n.distance)::double precision as similarity
    from nearest n
    join public.documents d on d.company_id = p_company_id and d.id = n.document_id
   where n.distance is not null
     and 1 - n.distance >= p_min_similarity
   order by n.distance, n.id;

  if v_iterative is not null then
    perform pg_catalog.set_config('hnsw.iterative_scan', v_iterative, true);
  end if;
  if v_ef_search is not null then
    perform pg_catalog.set_config('hnsw.ef_search', v_ef_search, true);
  end if;
end;
$$;

comment on function public.match_document_chunks({{ vector_schema }}.vector, integer, double precision) is
  'RAG top-k search in the caller''s company: the p_match_count chunks nearest (cosine) to p_query_embedding with similarity >= p_min_similarity, best first. Security invoker: RLS applies; returns nothing for callers without a company.';
comment on function public.match_document_chunks_for_company(uuid, {{ vector_schema }}.vector, integer, double precision) is
  'RAG top-k search in an explicit company (used by the bot engine as service_role, and by match_document_chunks): company-filtered HNSW scan (iterative scan where pgvector supports it), exact re-sort, similarity threshold. Security invoker: an authenticated caller still only sees its own company''s chunks through RLS.';

revoke execute on function public.match_document_chunks({{ vector_schema }}.vector, integer, double precision) from public, anon;
grant execute on function public.match_document_chunks({{ vector_schema }}.vector, integer, double precision) to authenticated, service_role;
-- Invoker function: the caller's own privileges and RLS decide what it reads,
-- so authenticated may call it (another company's id simply matches nothing).
revoke execute on function public.match_document_chunks_for_company(uuid, {{ vector_schema }}.vector, integer, double precision) from public, anon;
grant execute on function public.match_document_chunks_for_company(uuid, {{ vector_schema }}.vector, integer, double precision) to authenticated, service_role;
