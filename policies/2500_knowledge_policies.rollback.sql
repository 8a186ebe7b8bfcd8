-- Why: undoes 2500_knowledge_policies.sql (policies, grants, RLS flags).
{% from 'policies/_read_only.sql' import drop_read_only_when_inactive %}
{{ drop_read_only_when_inactive('public.knowledge_queries') }}
{{ drop_read_only_when_inactive('public.document_chunks') }}
{{ drop_read_only_when_inactive('public.documents') }}

drop policy if exists select_own_company_by_role on public.knowledge_queries;
drop policy if exists delete_as_admin on public.document_chunks;
drop policy if exists update_as_admin on public.document_chunks;
drop policy if exists insert_as_admin on public.document_chunks;
drop policy if exists select_own_company on public.document_chunks;
drop policy if exists delete_as_admin on public.documents;
drop policy if exists update_as_admin on public.documents;
drop policy if exists insert_as_admin on public.documents;
drop policy if exists select_own_company on public.documents;
revoke all on table public.documents, public.document_chunks, public.knowledge_queries
  from anon, authenticated, service_role;
alter table public.knowledge_queries no force row level security;
alter table public.knowledge_queries disable row level security;
alter table public.document_chunks no force row level security;
alter table public.document_chunks disable row level security;
alter table public.documents no force row level security;
alter table public.documents disable row level security;
