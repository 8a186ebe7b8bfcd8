-- Why: the knowledge domain (architecture section 4) - documents a company
-- uploads, their embedded chunks for RAG, and which chunks answered which
-- message. Plan limits on documents and storage bytes are enforced here, in the
-- same transaction as the row change, through private.consume_quota (race-free
-- counter bump on public.companies owned by the tenancy domain).

{% from 'schema/_tenant_guard.sql' import tenant_guard -%}
create type public.document_status as enum ('uploaded', 'processing', 'ready', 'failed');
comment on type public.document_status is
  'Ingestion state of a document: uploaded (stored, not yet chunked) -> processing (chunking/embedding) -> ready (searchable) | failed (see error_message).';

create table public.documents (
  company_id    uuid not null,
  id            uuid not null default gen_random_uuid(),
  title         text not null,
  mime_type     text not null,
  storage_path  text not null,
  size_bytes    bigint not null default 0,
  status        public.document_status not null default 'uploaded',
  error_message text,
  chunk_count   integer not null default 0,
  metadata      jsonb not null default '{}'::jsonb,
  uploaded_by   uuid,
  processed_at  timestamptz,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint documents_pkey primary key (company_id, id),
  constraint documents_storage_path_key unique (company_id, storage_path),
  constraint documents_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint documents_uploaded_by_fkey foreign key (company_id, uploaded_by)
    references public.users (company_id, id) on delete no action,
  constraint documents_title_length_check check (char_length(btrim(title)) between 1 and 500),
  constraint documents_mime_type_format_check
    check (mime_type ~ '^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$'),
  constraint documents_storage_path_length_check
    check (char_length(storage_path) between 1 and 1024 and storage_path !~ '(^/|\.\./)'),
  constraint documents_size_bytes_range_check check (size_bytes >= 0),
  constraint documents_chunk_count_range_check check (chunk_count >= 0),
  constraint documents_error_message_check check (
    (status = 'failed') = (error_message is not null)
    and (error_message is null or char_length(error_message) <= 4000)),
  constraint documents_metadata_object_check check (jsonb_typeof(metadata) = 'object')
);

comment on table public.documents is
  'A training document uploaded by a company (file in object storage + ingestion state). Counts against the plan limits max_documents and max_storage_bytes.';
comment on column public.documents.company_id is 'Tenant owning the document.';
comment on column public.documents.id is 'Document id (unique within the company).';
comment on column public.documents.title is 'Human readable title, 1-500 characters.';
comment on column public.documents.mime_type is 'MIME type of the uploaded file (lowercase type/subtype), e.g. application/pdf.';
comment on column public.documents.storage_path is 'Object-storage key of the file, relative to the company bucket prefix; unique per company, no leading slash nor "../".';
comment on column public.documents.size_bytes is 'Exact size of the stored file in bytes; summed into companies.current_storage_bytes by trigger.';
comment on column public.documents.status is 'Ingestion state (public.document_status).';
comment on column public.documents.error_message is 'Why ingestion failed; present if and only if status = failed.';
comment on column public.documents.chunk_count is 'Number of rows in public.document_chunks for this document, maintained by trigger.';
comment on column public.documents.metadata is 'Free-form non-secret JSON object (source url, language, page count, ...).';
comment on column public.documents.uploaded_by is 'public.users.id of the uploader; cleared when that user is deleted; defaults to the caller.';
comment on column public.documents.processed_at is 'When ingestion last finished (ready or failed).';
comment on column public.documents.created_at is 'When the row was created.';
comment on column public.documents.updated_at is 'Last change, maintained by private.touch_updated_at().';

create table public.document_chunks (
  company_id   uuid not null,
  id           uuid not null default gen_random_uuid(),
  document_id  uuid not null,
  chunk_index  integer not null,
  content      text not null,
  token_count  integer not null default 0,
  embedding    {{ vector_schema }}.vector({{ embedding_dimensions }}),
  metadata     jsonb not null default '{}'::jsonb,
  created_at   timestamptz not null default now(),
  constraint document_chunks_pkey primary key (company_id, id),
  constraint document_chunks_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint document_chunks_document_chunk_index_key unique (company_id, document_id, chunk_index),
  constraint document_chunks_document_fkey foreign key (company_id, document_id)
    references public.documents (company_id, id) on delete cascade,
  constraint document_chunks_chunk_index_range_check check (chunk_index >= 0),
  constraint document_chunks_content_length_check check (char_length(content) between 1 and 100000),
  constraint document_chunks_token_count_range_check check (token_count >= 0),
  constraint document_chunks_metadata_object_check check (jsonb_typeof(metadata) = 'object')
);

comment on table public.document_chunks is
  'A segment of a document with its embedding; the unit retrieved by RAG (see public.match_document_chunks).';
comment on column public.document_chunks.company_id is 'Tenant owning the chunk (same as its document).';
comment on column public.document_chunks.id is 'Chunk id (unique within the company).';
comment on column public.document_chunks.document_id is 'Document the chunk was cut from.';
comment on column public.document_chunks.chunk_index is 'Zero-based position of the chunk inside its document; unique per document.';
comment on column public.document_chunks.content is 'Chunk text, 1-100000 characters.';
comment on column public.document_chunks.token_count is 'Tokens in content according to the embedding model tokenizer.';
comment on column public.document_chunks.embedding is 'Embedding of content ({{ vector_schema }}.vector, dimension fixed at build time); null until embedded, never returned by search while null.';
comment on column public.document_chunks.metadata is 'Free-form JSON object (page, heading, offsets, ...).';
comment on column public.document_chunks.created_at is 'When the chunk was stored.';

create table public.knowledge_queries (
  company_id      uuid not null,
  id              uuid not null default gen_random_uuid(),
  conversation_id uuid not null,
  message_id      uuid not null,
  chatbot_id      uuid not null,
  chunk_id        uuid not null,
  document_id     uuid not null,
  similarity      real not null,
  rank            smallint not null,
  created_at      timestamptz not null default now(),
  constraint knowledge_queries_pkey primary key (company_id, id),
  constraint knowledge_queries_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint knowledge_queries_message_rank_key unique (company_id, message_id, rank),
  constraint knowledge_queries_message_fkey foreign key (company_id, message_id, conversation_id, chatbot_id)
    references public.messages (company_id, id, conversation_id, chatbot_id) on delete cascade,
  constraint knowledge_queries_chunk_fkey foreign key (company_id, chunk_id)
    references public.document_chunks (company_id, id) on delete cascade,
  constraint knowledge_queries_document_fkey foreign key (company_id, document_id)
    references public.documents (company_id, id) on delete cascade,
  constraint knowledge_queries_similarity_range_check check (similarity >= 0 and similarity <= 1),
  constraint knowledge_queries_rank_range_check check (rank between 1 and 100)
);

comment on table public.knowledge_queries is
  'RAG usage analytics: which chunk (rank N, similarity S) was retrieved to answer which message. Written by the bot engine (service_role); read like conversations.';
comment on column public.knowledge_queries.company_id is 'Tenant of the message and of the chunk (both FKs include it).';
comment on column public.knowledge_queries.id is 'Row id.';
comment on column public.knowledge_queries.conversation_id is 'Conversation of the answered message; filled from the message when omitted; the composite FK to messages keeps it equal.';
comment on column public.knowledge_queries.message_id is 'Message (normally the bot answer) the chunk was retrieved for.';
comment on column public.knowledge_queries.chatbot_id is 'Chatbot of the conversation (denormalised so operador policies need no subquery); filled from the message when omitted, kept equal by the composite FK to messages.';
comment on column public.knowledge_queries.chunk_id is 'Retrieved chunk.';
comment on column public.knowledge_queries.document_id is 'Document of the chunk; filled by trigger from the chunk (per-document usage analytics).';
comment on column public.knowledge_queries.similarity is 'Cosine similarity (1 - cosine distance) between query and chunk, clamped to 0..1.';
comment on column public.knowledge_queries.rank is 'Position of the chunk in the top-k result (1 = best), unique per message.';
comment on column public.knowledge_queries.created_at is 'When the retrieval happened.';

-- ---------------------------------------------------------------------------
-- Trigger functions
-- ---------------------------------------------------------------------------

create function private.documents_before_write() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    if new.uploaded_by is null then
      new.uploaded_by := private.get_current_user_id();
    end if;
  end if;
  if new.status in ('ready', 'failed')
     and (tg_op = 'INSERT' or old.status is distinct from new.status) then
    new.processed_at := coalesce(new.processed_at, now());
  end if;
  return new;
end;
$$;
comment on function private.documents_before_write() is
  'Trigger: defaults uploaded_by to the caller, stamps processed_at when ingestion ends (a document never moves across companies: documents_0_tenant_key).';

create function private.documents_quota() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    perform private.consume_quota(new.company_id, 'current_document_count', 1);
    perform private.consume_quota(new.company_id, 'current_storage_bytes', new.size_bytes);
    return new;
  elsif tg_op = 'UPDATE' then
    if new.size_bytes <> old.size_bytes then
      perform private.consume_quota(new.company_id, 'current_storage_bytes', new.size_bytes - old.size_bytes);
    end if;
    return new;
  else
    -- A cascade from a deleted company: the counters vanish with it.
    if exists (select 1 from public.companies c where c.id = old.company_id) then
      perform private.consume_quota(old.company_id, 'current_document_count', -1);
      perform private.consume_quota(old.company_id, 'current_storage_bytes', -old.size_bytes);
    end if;
    return old;
  end if;
end;
$$;
comment on function private.documents_quota() is
  'Trigger: keeps companies.current_document_count / current_storage_bytes exact and enforces the plan limits (errcode NA001) in the same transaction.';

create function private.document_chunks_count() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin{% if profile == 'citus' %}
  -- Citus: a row trigger; a shard's statement trigger cannot hand its transition table to
  -- a distributed query (XX000 "could not find named tuplestore", issue 19). The update
  -- names the company: it runs on the co-located shard of this node.
  if tg_op = 'INSERT' then
    update public.documents d set chunk_count = d.chunk_count + 1
     where d.company_id = new.company_id and d.id = new.document_id;
  else
    update public.documents d set chunk_count = greatest(d.chunk_count - 1, 0)
     where d.company_id = old.company_id and d.id = old.document_id;
  end if;
  return null;
end;
$$;{% else %}
  if tg_op = 'INSERT' then
    update public.documents d
       set chunk_count = d.chunk_count + n.cnt
      from (select company_id, document_id, count(*)::integer as cnt
              from new_rows group by company_id, document_id) n
     where d.company_id = n.company_id and d.id = n.document_id;
  else
    update public.documents d
       set chunk_count = greatest(d.chunk_count - o.cnt, 0)
      from (select company_id, document_id, count(*)::integer as cnt
              from old_rows group by company_id, document_id) o
     where d.company_id = o.company_id and d.id = o.document_id;
  end if;
  return null;
end;
$$;{% endif %}
comment on function private.document_chunks_count() is
  'Statement trigger: adjusts documents.chunk_count once per document per statement (bulk ingestion does not update the document row per chunk){{ '; profile citus: a row trigger, once per chunk' if profile == 'citus' }}.';

create function private.document_chunks_before_update() returns trigger
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.document_id is distinct from old.document_id then
    raise exception using errcode = '22023',
      message = 'a chunk cannot move to another document or company',
      hint = 'Delete the chunk and insert it under the other document.';
  end if;
  return new;
end;
$$;
comment on function private.document_chunks_before_update() is
  'Trigger: chunks are bound to their document (keeps documents.chunk_count exact).';

create function private.knowledge_queries_before_write() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  -- conversation_id / chatbot_id default to the message's; a mismatch is
  -- rejected by knowledge_queries_message_fkey.
  if new.conversation_id is null or new.chatbot_id is null then
    select coalesce(new.conversation_id, m.conversation_id), coalesce(new.chatbot_id, m.chatbot_id)
      into new.conversation_id, new.chatbot_id
      from public.messages m
     where m.company_id = new.company_id and m.id = new.message_id;
  end if;
  -- document_id is always the chunk's.
  select ch.document_id into new.document_id
    from public.document_chunks ch
   where ch.company_id = new.company_id and ch.id = new.chunk_id;
  return new;
end;
$$;
comment on function private.knowledge_queries_before_write() is
  'Trigger: fills conversation_id/chatbot_id from the message when omitted and derives document_id from the chunk.';

create trigger documents_before_write
  before insert or update on public.documents
  for each row execute function private.documents_before_write();
create trigger documents_touch_updated_at
  before update on public.documents
  for each row execute function private.touch_updated_at();
create trigger documents_quota_insert
  after insert on public.documents
  for each row execute function private.documents_quota();
create trigger documents_quota_update
  after update of size_bytes on public.documents
  for each row execute function private.documents_quota();
create trigger documents_quota_delete
  after delete on public.documents
  for each row execute function private.documents_quota();

create trigger document_chunks_before_update
  before update on public.document_chunks
  for each row execute function private.document_chunks_before_update();
create trigger document_chunks_count_insert
  after insert on public.document_chunks{% if profile == 'citus' %}
  for each row{% else %}
  referencing new table as new_rows
  for each statement{% endif %} execute function private.document_chunks_count();
create trigger document_chunks_count_delete
  after delete on public.document_chunks{% if profile == 'citus' %}
  for each row{% else %}
  referencing old table as old_rows
  for each statement{% endif %} execute function private.document_chunks_count();

create trigger knowledge_queries_before_write
  before insert or update on public.knowledge_queries
  for each row execute function private.knowledge_queries_before_write();

create trigger users_clear_documents_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.documents', 'uploaded_by');

comment on trigger documents_before_write on public.documents is 'See private.documents_before_write().';
comment on trigger documents_touch_updated_at on public.documents is 'Maintains updated_at.';
comment on trigger documents_quota_insert on public.documents is 'Counts a new document and its bytes against the plan.';
comment on trigger documents_quota_update on public.documents is 'Counts a size change against the storage limit.';
comment on trigger documents_quota_delete on public.documents is 'Gives back the document and its bytes.';
comment on trigger document_chunks_before_update on public.document_chunks is 'Chunks cannot change document.';
comment on trigger document_chunks_count_insert on public.document_chunks is 'Adds inserted chunks to documents.chunk_count.';
comment on trigger document_chunks_count_delete on public.document_chunks is 'Subtracts deleted chunks from documents.chunk_count.';
comment on trigger knowledge_queries_before_write on public.knowledge_queries is 'Fills conversation_id/chatbot_id/document_id.';
comment on trigger users_clear_documents_references on public.users is 'Clears documents.uploaded_by before a member is deleted (private.clear_user_reference).';

revoke execute on function private.documents_before_write() from public, anon, authenticated;
revoke execute on function private.documents_quota() from public, anon, authenticated;
revoke execute on function private.document_chunks_count() from public, anon, authenticated;
revoke execute on function private.document_chunks_before_update() from public, anon, authenticated;
revoke execute on function private.knowledge_queries_before_write() from public, anon, authenticated;

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.documents') }}

-- Audit trail (private.audit_row_change, schema/0050_audit_trail.sql).
create trigger documents_audit
  after insert or update or delete on public.documents
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at,chunk_count,processed_at');
comment on trigger documents_audit on public.documents is 'Audits document uploads, edits and deletions.';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.document_chunks') }}

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.knowledge_queries') }}
