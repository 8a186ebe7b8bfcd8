-- Why: undoes 2300_match_document_chunks.sql.
drop function if exists public.match_document_chunks({{ vector_schema }}.vector, integer, double precision);
drop function if exists public.match_document_chunks_for_company(uuid, {{ vector_schema }}.vector, integer, double precision);
