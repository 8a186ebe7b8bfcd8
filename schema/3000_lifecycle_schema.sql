-- Why: the data lifecycle of docs/design.md ("Active (1 year) -> archive tables -> cold
-- storage export (3 years) -> compliance retention (7 years) -> secure deletion, unless
-- a legal hold applies"). This migration holds the data side: legal holds, the job-run ledger, the cold
-- export ledger and the archive tables (schema `archive`, same tenant keys as the live
-- tables). The jobs that move rows are in functions/3300-3340.

{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
create schema archive;
comment on schema archive is
  'Archived tenant data (closed conversations and their rows, integration logs, daily analytics) moved out of the live tables by public.job_archive(); '
  'owner/administrador read their company''s archive, only the lifecycle jobs (service_role) write it.';
revoke all on schema archive from public;
grant usage on schema archive to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Legal holds
-- ---------------------------------------------------------------------------
create table public.legal_holds (
  company_id      uuid not null,
  id              uuid not null default gen_random_uuid(),
  conversation_id uuid,
  reason          text not null,
  set_by          text not null,
  created_at      timestamptz not null default now(),
  released_at     timestamptz,
  released_by     text,
  constraint legal_holds_pkey primary key (company_id, id),
  constraint legal_holds_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint legal_holds_reason_length_check check (char_length(btrim(reason)) between 3 and 2000),
  constraint legal_holds_set_by_length_check check (char_length(btrim(set_by)) between 1 and 200),
  constraint legal_holds_released_check check ((released_at is null) = (released_by is null)),
  constraint legal_holds_released_by_length_check check (char_length(btrim(released_by)) between 1 and 200)
);
comment on table public.legal_holds is
  'Legal holds (tenant table): while a hold is active (released_at is null) no lifecycle job moves, exports-and-deletes or deletes the data it covers, '
  'and every delete, truncate or content update of a covered row, by any role or cascade, raises 42501 naming the hold (private.legal_hold_guard). '
  'conversation_id null = the whole company; conversation_id names a conversation of the same company, live or archived. '
  'Set and released by service_role (compliance staff through the backend); owner/administrador read their company''s holds.'{{ doctor_notes('public.legal_holds') }};
comment on column public.legal_holds.company_id is 'Company whose data is held (tenant key).';
comment on column public.legal_holds.id is 'Hold id.';
comment on column public.legal_holds.conversation_id is
  'Held conversation, wherever it lives (public.conversations, archive.conversations_archived or a cold export); null holds every row of the company. No FK: the conversation moves between tables.';
comment on column public.legal_holds.reason is 'Why the data is held (case, request, regulation), 3-2000 characters.';
comment on column public.legal_holds.set_by is 'Who set the hold (person, e-mail or ticket), 1-200 characters.';
comment on column public.legal_holds.created_at is 'When the hold was set.';
comment on column public.legal_holds.released_at is 'When the hold was released; null while it is active. Set once, never changed again.';
comment on column public.legal_holds.released_by is 'Who released the hold; set exactly when released_at is.';

create function private.legal_holds_guard() returns trigger
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'DELETE' then
    if old.released_at is null then
      raise exception using errcode = '42501',
        message = format('legal hold %s is active and cannot be deleted', old.id),
        hint = 'Release it first (set released_at and released_by); released holds are history.';
    end if;
    return old;
  end if;
  if new.company_id is distinct from old.company_id or new.id is distinct from old.id
     or new.conversation_id is distinct from old.conversation_id or new.set_by is distinct from old.set_by
     or new.created_at is distinct from old.created_at
     or (old.released_at is not null and (new.released_at is distinct from old.released_at
                                          or new.released_by is distinct from old.released_by)) then
    raise exception using errcode = '22023',
      message = 'a legal hold can only have its reason edited and be released once',
      hint = 'Set a new hold instead of changing what an existing one covers.';
  end if;
  return new;
end;
$$;
comment on function private.legal_holds_guard() is
  'Trigger: an active legal hold cannot be deleted (42501); only reason may change, and released_at/released_by are set once (22023).';
revoke execute on function private.legal_holds_guard() from public, anon, authenticated;

create trigger legal_holds_guard
  before update or delete on public.legal_holds
  for each row execute function private.legal_holds_guard();
comment on trigger legal_holds_guard on public.legal_holds is 'What a hold covers is immutable; active holds cannot be deleted.';

-- A hold names a conversation of its own company (issue 9): no FK is possible, the
-- conversation moves between public.conversations and the archive, so a trigger checks
-- both places and locks the row it found (no concurrent delete can slip past the hold).
create function private.legal_holds_check_conversation() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.conversation_id is not null then
    perform 1 from public.conversations c
      where c.company_id = new.company_id and c.id = new.conversation_id for key share;
    if not found then
      perform 1 from archive.conversations_archived c
        where c.company_id = new.company_id and c.id = new.conversation_id for key share;
    end if;
    if not found then
      raise exception using errcode = '23503', constraint = 'legal_holds_conversation_fkey',
        message = format('legal hold names conversation %s, which company %s has neither live nor archived',
                         new.conversation_id, new.company_id),
        hint = 'Name a conversation of the same company (live or archived); restore a cold export before holding its conversations.';
    end if;
  end if;
  return new;
end;
$$;
comment on function private.legal_holds_check_conversation() is
  'Trigger (before insert on legal_holds): conversation_id must name a conversation of the same company in public.conversations or archive.conversations_archived (23503, constraint legal_holds_conversation_fkey); what a hold covers never changes afterwards (legal_holds_guard).';
revoke execute on function private.legal_holds_check_conversation() from public, anon, authenticated;

create trigger legal_holds_check_conversation
  before insert on public.legal_holds
  for each row execute function private.legal_holds_check_conversation();
comment on trigger legal_holds_check_conversation on public.legal_holds is 'A hold names a conversation of its own company, live or archived.';

{{ tenant_guard('public.legal_holds') }}

-- Held data cannot be deleted, truncated or rewritten, by any path (a member, service_role,
-- the migration owner, a cascade from a parent, a member's reference clean-up, a job). One
-- trigger function, attached to every tenant table that holds records (live and archived)
-- as "<table>_legal_hold" (before update or delete, per row) and "<table>_legal_hold_truncate"
-- (before truncate), generated from schema/_tables.toml below; `neurant-db doctor`
-- (legal_hold.trigger) fails for a tenant table that has neither the triggers nor an
-- allow.legal_hold reason in the registry.
--
-- What a "content update" is, per table: every column except the ones passed as arguments,
-- which may still change while the row is held because the workflow and the bookkeeping
-- go on under a hold (a held conversation can still be answered, escalated, assigned and
-- closed; a held document can still finish processing; an integration can be paused and
-- its credentials rotated; the roll-up recomputes live daily counters from the held rows
-- they are derived from). Archived rows change in no column.
create function private.legal_hold_guard() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
-- Trigger arguments: 0 how a row maps to holds: 'tenant' (the row is the company: any of its
-- active holds), 'company' (its company's company-wide holds) or the column holding its
-- conversation id (company-wide holds and holds on that conversation); 1.. the columns that
-- may still change while the row is held.
declare
  v_map text := tg_argv[0];
  v_old jsonb;
  v_free text[];
  v_company uuid;
  v_conversation uuid;
  v_hold uuid;
begin
  if tg_op = 'TRUNCATE' then
    select h.id into v_hold
      from public.legal_holds h
     where h.released_at is null and (v_map <> 'company' or h.conversation_id is null)
     order by h.created_at, h.id
     limit 1;
    if v_hold is not null then
      raise exception using errcode = '42501',
        message = format('%s.%s cannot be truncated while a legal hold is active', tg_table_schema, tg_table_name),
        hint = format('Legal hold %s covers rows of this table; release it (public.legal_holds) first, or delete the rows it does not cover.', v_hold);
    end if;
    return null;
  end if;
  v_old := pg_catalog.to_jsonb(old);
  if tg_op = 'UPDATE' then
    v_free := coalesce(tg_argv[1:], '{}'::text[]);
    if (pg_catalog.to_jsonb(new) - v_free) = (v_old - v_free) then
      return new;
    end if;
  end if;
  v_company := (v_old ->> case v_map when 'tenant' then 'id' else 'company_id' end)::uuid;
  if v_map not in ('tenant', 'company') then
    v_conversation := (v_old ->> v_map)::uuid;
  end if;
  select h.id into v_hold
    from public.legal_holds h
   where h.company_id = v_company and h.released_at is null
     and (v_map = 'tenant' or h.conversation_id is null or h.conversation_id = v_conversation)
   order by h.created_at, h.id
   limit 1;
  if v_hold is null then
    if tg_op = 'DELETE' then
      return old;
    end if;
    return new;
  end if;
  raise exception using errcode = '42501',
    message = format('%s.%s: %s of company %s is under legal hold and cannot be %s', tg_table_schema, tg_table_name,
                     case when v_map = 'tenant' then 'the company'
                          when v_conversation is not null then 'conversation ' || v_conversation
                          else 'this row' end,
                     v_company, case tg_op when 'DELETE' then 'deleted' else 'changed' end),
    hint = format('Legal hold %s covers it; release the hold (public.legal_holds) first.', v_hold);
end;
$$;
comment on function private.legal_hold_guard() is
  'Trigger (before update or delete per row, before truncate per statement) on every tenant table holding records: raises 42501, with a hint naming the hold, when an active legal hold covers the row. '
  'Arguments: how a row maps to holds (''tenant'', ''company'' or the conversation id column), then the columns that may still change under a hold (workflow/bookkeeping). Security definer: members cannot read every hold.';
revoke execute on function private.legal_hold_guard() from public, anon, authenticated;

-- ---------------------------------------------------------------------------
-- Job runs and cold exports (platform bookkeeping, service_role only)
-- ---------------------------------------------------------------------------
create table private.job_runs (
  id          bigint generated by default as identity,
  job         text not null,
  status      text not null default 'running',
  dry_run     boolean not null default false,
  params      jsonb not null default '{}'::jsonb,
  started_at  timestamptz not null default now(),
  finished_at timestamptz,
  batches     integer not null default 0,
  rows_moved  jsonb not null default '{}'::jsonb,
  error       text,
  backend_pid integer not null default pg_backend_pid(),
  constraint job_runs_pkey primary key (id),
  constraint job_runs_job_format_check check (job ~ '^[a-z][a-z0-9_-]{0,39}$'),
  constraint job_runs_status_check check (status in ('running', 'succeeded', 'failed', 'interrupted')),
  constraint job_runs_finished_check check ((status = 'running') = (finished_at is null)),
  constraint job_runs_rows_moved_object_check check (jsonb_typeof(rows_moved) = 'object'),
  constraint job_runs_params_object_check check (jsonb_typeof(params) = 'object')
);
comment on table private.job_runs is
  'One row per lifecycle job run (archive, cold-export, retention, analytics, metrics): progress and counts, committed with every batch. '
  'A run still "running" whose session is gone was killed; the next run of the job marks it interrupted. Platform-wide: service_role only.';
comment on column private.job_runs.id is 'Run id.';
comment on column private.job_runs.job is 'Job name: archive, cold-export, retention, analytics, metrics.';
comment on column private.job_runs.status is 'running, succeeded, failed (error says why) or interrupted (the session died mid-run; committed batches stay done).';
comment on column private.job_runs.dry_run is 'True when the run only counted what it would do.';
comment on column private.job_runs.params is 'Parameters of the run (batch size, as-of time, ...).';
comment on column private.job_runs.started_at is 'Start of the run.';
comment on column private.job_runs.finished_at is 'End of the run; null while running.';
comment on column private.job_runs.batches is 'Batches committed so far.';
comment on column private.job_runs.rows_moved is 'Rows moved/deleted/written so far, per table (JSON object table -> count); for a dry run, the rows it would touch.';
comment on column private.job_runs.error is 'Error message of a failed run.';
comment on column private.job_runs.backend_pid is 'Backend pid of the session running the job (to tell a live run from a killed one).';

create table private.cold_exports (
  id              uuid not null default gen_random_uuid(),
  job_run_id      bigint,
  location        text not null,
  manifest_sha256 text not null,
  row_counts      jsonb not null,
  status          text not null default 'deleted',
  created_at      timestamptz not null default now(),
  restored_at     timestamptz,
  constraint cold_exports_pkey primary key (id),
  constraint cold_exports_job_run_fkey foreign key (job_run_id) references private.job_runs (id) on delete set null,
  constraint cold_exports_status_check check (status in ('deleted', 'restored')),
  constraint cold_exports_manifest_sha256_check check (manifest_sha256 ~ '^[0-9a-f]{64}$'),
  constraint cold_exports_row_counts_object_check check (jsonb_typeof(row_counts) = 'object'),
  constraint cold_exports_location_length_check check (char_length(location) between 1 and 4096)
);
comment on table private.cold_exports is
  'Cold-storage exports whose rows were verified and deleted from the archive (inserted in the same transaction as the deletion, so a row here '
  'means the export is the only copy). Platform-wide: service_role only.';
comment on column private.cold_exports.id is 'Export id; also in the export''s manifest.json.';
comment on column private.cold_exports.job_run_id is 'The cold-export job run that wrote it.';
comment on column private.cold_exports.location is 'Directory the export was written to (as seen by the exporting host).';
comment on column private.cold_exports.manifest_sha256 is 'sha256 of manifest.json (which holds every file''s sha256 and row count).';
comment on column private.cold_exports.row_counts is 'Rows exported and deleted, per archive table.';
comment on column private.cold_exports.status is 'deleted: the rows live only in the export; restored: they were read back into the archive.';
comment on column private.cold_exports.created_at is 'When the rows were deleted from the database.';
comment on column private.cold_exports.restored_at is 'When the export was restored; null otherwise.';

-- ---------------------------------------------------------------------------
-- Archive tables: live columns + archived_at. Keys include company_id; the only
-- FKs are to the company (cascade) and between archive tables (deferred, so a
-- batch can move children before parents in one transaction). No FK to users,
-- chatbots or documents: archived history outlives them. As in the live tables, the
-- FKs between archive tables carry conversation_id and chatbot_id too, so an archived
-- row belongs to the conversation (and chatbot) of its parent: a hold on a conversation
-- covers every row that names it.
-- ---------------------------------------------------------------------------
create table archive.conversations_archived (
  company_id                   uuid not null,
  id                           uuid not null,
  chatbot_id                   uuid not null,
  end_user_id                  text not null,
  channel                      public.channel_type not null,
  status                       public.conversation_status not null,
  is_hitl_active               boolean not null,
  assigned_operator_id         uuid,
  hitl_escalated_at            timestamptz,
  bot_turns_without_resolution integer not null,
  last_message_at              timestamptz,
  closed_at                    timestamptz,
  created_at                   timestamptz not null,
  updated_at                   timestamptz not null,
  archived_at                  timestamptz not null default now(),
  constraint conversations_archived_pkey primary key (company_id, id),
  constraint conversations_archived_id_chatbot_key unique (company_id, id, chatbot_id),
  constraint conversations_archived_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade
);
comment on table archive.conversations_archived is
  'Closed conversations moved out of public.conversations by public.job_archive() (same columns + archived_at). Read by owner/administrador; written only by the lifecycle jobs.';

create table archive.messages_archived (
  company_id         uuid not null,
  id                 uuid not null,
  conversation_id    uuid not null,
  chatbot_id         uuid not null,
  sender_type        public.message_sender_type not null,
  sender_id          uuid,
  content            text not null,
  processing_time_ms integer,
  token_count        integer,
  created_at         timestamptz not null,
  archived_at        timestamptz not null default now(),
  constraint messages_archived_pkey primary key (company_id, id),
  constraint messages_archived_id_conversation_key unique (company_id, id, conversation_id, chatbot_id),
  constraint messages_archived_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint messages_archived_conversation_fkey foreign key (company_id, conversation_id, chatbot_id)
    references archive.conversations_archived (company_id, id, chatbot_id) on delete cascade deferrable initially deferred
);
comment on table archive.messages_archived is
  'Messages of archived conversations, moved with them from public.messages. Read by owner/administrador; written only by the lifecycle jobs.';

create table archive.message_reactions_archived (
  company_id      uuid not null,
  id              uuid not null,
  message_id      uuid not null,
  conversation_id uuid not null,
  chatbot_id      uuid not null,
  reaction        public.reaction_type not null,
  rating          smallint,
  comment         text not null,
  created_by      uuid,
  created_at      timestamptz not null,
  archived_at     timestamptz not null default now(),
  constraint message_reactions_archived_pkey primary key (company_id, id),
  constraint message_reactions_archived_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint message_reactions_archived_message_fkey foreign key (company_id, message_id, conversation_id, chatbot_id)
    references archive.messages_archived (company_id, id, conversation_id, chatbot_id) on delete cascade deferrable initially deferred
);
comment on table archive.message_reactions_archived is
  'Reactions to archived messages, moved with their conversation from public.message_reactions. Read by owner/administrador; written only by the lifecycle jobs.';

create table archive.hitl_escalations_archived (
  company_id      uuid not null,
  id              uuid not null,
  conversation_id uuid not null,
  chatbot_id      uuid not null,
  reason          public.hitl_escalation_reason not null,
  detail          text not null,
  escalated_by    uuid,
  created_at      timestamptz not null,
  archived_at     timestamptz not null default now(),
  constraint hitl_escalations_archived_pkey primary key (company_id, id),
  constraint hitl_escalations_archived_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint hitl_escalations_archived_conversation_fkey foreign key (company_id, conversation_id, chatbot_id)
    references archive.conversations_archived (company_id, id, chatbot_id) on delete cascade deferrable initially deferred
);
comment on table archive.hitl_escalations_archived is
  'HITL escalations of archived conversations, moved with them from public.hitl_escalations. Read by owner/administrador; written only by the lifecycle jobs.';

create table archive.knowledge_queries_archived (
  company_id      uuid not null,
  id              uuid not null,
  conversation_id uuid not null,
  message_id      uuid not null,
  chatbot_id      uuid not null,
  chunk_id        uuid not null,
  document_id     uuid not null,
  similarity      real not null,
  rank            smallint not null,
  created_at      timestamptz not null,
  archived_at     timestamptz not null default now(),
  constraint knowledge_queries_archived_pkey primary key (company_id, id),
  constraint knowledge_queries_archived_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint knowledge_queries_archived_message_fkey foreign key (company_id, message_id, conversation_id, chatbot_id)
    references archive.messages_archived (company_id, id, conversation_id, chatbot_id) on delete cascade deferrable initially deferred
);
comment on table archive.knowledge_queries_archived is
  'RAG retrievals of archived messages, moved with their conversation from public.knowledge_queries (chunk/document ids are kept, without FK). '
  'Read by owner/administrador; written only by the lifecycle jobs.';

create table archive.integration_logs_archived (
  company_id     uuid not null,
  id             uuid not null,
  integration_id uuid not null,
  direction      public.integration_direction not null,
  operation      text not null,
  status         public.integration_log_status not null,
  http_status    smallint,
  latency_ms     integer not null,
  error_message  text,
  request_id     text,
  created_at     timestamptz not null,
  archived_at    timestamptz not null default now(),
  constraint integration_logs_archived_pkey primary key (company_id, id),
  constraint integration_logs_archived_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade
);
comment on table archive.integration_logs_archived is
  'Integration logs older than the plan''s archive_after_days, moved from public.integration_logs. Read by owner/administrador; written only by the lifecycle jobs.';

create table archive.analytics_archived (
  company_id              uuid not null,
  chatbot_id              uuid not null,
  day                     date not null,
  conversations_count     integer not null,
  new_conversations_count integer not null,
  messages_count          integer not null,
  end_user_messages_count integer not null,
  bot_messages_count      integer not null,
  operator_messages_count integer not null,
  hitl_escalations        integer not null,
  avg_processing_time_ms  numeric(12, 2),
  positive_reactions      integer not null,
  negative_reactions      integer not null,
  knowledge_queries_count integer not null,
  refreshed_at            timestamptz not null,
  archived_at             timestamptz not null default now(),
  constraint analytics_archived_pkey primary key (company_id, chatbot_id, day),
  constraint analytics_archived_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade
);
comment on table archive.analytics_archived is
  'Daily analytics rows older than the plan''s archive_after_days, moved from public.analytics_daily; an archived day is frozen (the roll-up no longer rewrites it). '
  'Read by owner/administrador; written only by the lifecycle jobs.';

-- The legal-hold triggers of every table schema/_tables.toml gives a legal_hold entry
-- (private.legal_hold_guard above), live and archived: the conversation tables by
-- conversation, the others by company-wide holds, companies by any hold.
{% from 'schema/_legal_hold.sql' import legal_hold_triggers -%}
{{ legal_hold_triggers() }}
-- Tenant guard of the archive tables (see schema/0060_tenant_guard.sql): company_id never
-- changes; the lifecycle jobs (service_role) are the only writers.
{{ tenant_guard('archive.conversations_archived') }}
{{ tenant_guard('archive.messages_archived') }}
{{ tenant_guard('archive.message_reactions_archived') }}
{{ tenant_guard('archive.hitl_escalations_archived') }}
{{ tenant_guard('archive.knowledge_queries_archived') }}
{{ tenant_guard('archive.integration_logs_archived') }}
{{ tenant_guard('archive.analytics_archived') }}

-- Column comments of the archive tables (same meaning as the live columns).
do $$
declare
  r record;
  v_live text;
  v_comment text;
begin
  for r in
    select c.relname, a.attname, a.attnum, c.oid
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where n.nspname = 'archive' and c.relkind = 'r'
  loop
    v_live := case r.relname
{%- for entry in tables.archives() %}
      when '{{ entry.relname }}' then '{{ entry.archive_of }}'
{%- endfor %} end;
    if r.attname = 'archived_at' then
      v_comment := 'When the row was moved to the archive.';
    else
      select 'As ' || v_live || '.' || r.attname || ': ' || coalesce(pg_catalog.col_description(v_live::regclass, a.attnum), '')
        into v_comment
        from pg_catalog.pg_attribute a
       where a.attrelid = v_live::regclass and a.attname = r.attname;
    end if;
    execute format('comment on column archive.%I.%I is %L', r.relname, r.attname,
                   coalesce(v_comment, 'Archived copy of ' || v_live || '.' || r.attname || '.'));
  end loop;
end
$$;
