-- Why: the archive move of the data lifecycle (active -> archive tables after the plan's
-- archive_after_days). Each batch is one function call, one transaction: the insert into
-- the archive and the delete from the live table commit together, so a row is in exactly
-- one place at every instant. public.job_archive commits after every batch (a procedure
-- carries no SET clause, which would forbid COMMIT: every name is schema-qualified
-- instead). A batch goes company by company (private.lifecycle_cutoffs) and every statement
-- in it names its company: one shard on Citus (docs/scale-out.md), one index range here.
{% from 'functions/_lifecycle.sql' import not_held, conversation_tables, move_to_archive -%}
{% set children = conversation_tables('public').split(' ') -%}
{#- The eligibility rules, once: the batches and the previews render them. -#}
{% macro archivable(c) -%}
{{ c }}.company_id = k.company_id and {{ c }}.status = 'closed' and {{ c }}.closed_at < k.archive_before and {{ not_held('k.company_id', c ~ '.id') }}
{%- endmacro -%}
{% macro old_logs(l, before) -%}
{{ l }}.company_id = k.company_id and {{ l }}.created_at < k.{{ before }}
{%- endmacro -%}
{% macro old_days(a, before) -%}
{{ a }}.company_id = k.company_id and {{ a }}.day < (k.{{ before }} at time zone 'UTC')::pg_catalog.date
{%- endmacro %}

-- ---------------------------------------------------------------------------
-- Jobs never wait on a member (issue 20, item 3)
-- ---------------------------------------------------------------------------

create function private.lock_conversation_rows(p_company_id uuid, p_ids uuid[]) returns uuid[]
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_locked uuid[];
  v_all uuid[];
begin
  -- Lock every live row hanging off the claimed conversations, in
  -- {{ children | join(', ') }},
  -- skipping what another transaction holds (a member's uncommitted reaction holds its
  -- message, an uncommitted delete the row); then read them all.
{%- for pass in ['locked', 'all'] %}
  select coalesce(pg_catalog.array_agg(t.conversation_id), '{}') into v_{{ pass }}
    from (
{%- for table in children %}
          select x.conversation_id
            from (select r.conversation_id from {{ table }} r
                   where r.company_id = p_company_id and r.conversation_id = any (p_ids)
{%- if pass == 'locked' %}
                     for update of r skip locked
{%- endif %}) x{{ '\n          union all' if not loop.last }}
{%- endfor %}) t;
{%- endfor %}
  -- Keep the conversations whose every row is now locked by this transaction; the others stay
  -- live, untouched, for the next batch or run.
  return (select coalesce(pg_catalog.array_agg(b.id), '{}')
            from unnest(p_ids) b(id)
           where (select pg_catalog.count(*) from unnest(v_locked) l(id) where l.id = b.id)
               = (select pg_catalog.count(*) from unnest(v_all) a(id) where a.id = b.id));
end;
$$;
comment on function private.lock_conversation_rows(uuid, uuid[]) is
  'Locks, without waiting, every {{ children | map("replace", "public.", "") | join(", ") }} row of the given (already locked) live conversations of company p_company_id '
  '(the tables schema/_tables.toml maps to a conversation), and returns the conversations whose rows are all locked now: one with a row another transaction holds '
  '(a member''s open transaction) is left for a later batch or run, so a job never waits on a member.';

-- ---------------------------------------------------------------------------
-- One batch of each move (callable in a transaction: the pgTAP suites use them)
-- ---------------------------------------------------------------------------

create function private.archive_conversations_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  k record;
  v_ids uuid[];
  v_left integer := p_limit;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_out jsonb := '{}'::jsonb;
  n bigint;
begin
  perform private.lifecycle_require_privileges();
  for k in select c.company_id, c.archive_before from private.lifecycle_cutoffs(p_as_of) c where not c.company_held loop
    exit when v_left < 1;
    -- 1. claim up to the rest of the batch of the company's conversations; rows another
    --    transaction holds are skipped (next batch/run)
    select coalesce(pg_catalog.array_agg(c.id), '{}') into v_ids
      from (select c.id from public.conversations c
             where {{ archivable('c') }}
             limit v_left
               for update of c skip locked) c;
    continue when pg_catalog.cardinality(v_ids) = 0;
    -- 2. lock their messages and child rows without waiting (a conversation with a row another
    --    transaction holds waits for a later batch or run); a concurrent reaction / knowledge
    --    query on a locked message now waits for this batch and then fails its foreign key
    --    check, instead of being lost by a cascade
    v_ids := private.lock_conversation_rows(k.company_id, v_ids);
    continue when pg_catalog.cardinality(v_ids) = 0;
    v_left := v_left - pg_catalog.cardinality(v_ids);
    -- 3. move children first (archive FKs are deferred to commit); every delete returns
    --    exactly the rows inserted, in the same statement
    {{ move_to_archive('public.message_reactions', 'r', 'conversation_id', 'archive.message_reactions_archived',
         'company_id, id, message_id, conversation_id, chatbot_id, reaction, rating, comment, created_by, created_at',
         'message_reactions') }}

    {{ move_to_archive('public.knowledge_queries', 'q', 'conversation_id', 'archive.knowledge_queries_archived',
         'company_id, id, conversation_id, message_id, chatbot_id, chunk_id, document_id, similarity, rank, created_at',
         'knowledge_queries') }}

    {{ move_to_archive('public.hitl_escalations', 'e', 'conversation_id', 'archive.hitl_escalations_archived',
         'company_id, id, conversation_id, chatbot_id, reason, detail, escalated_by, created_at', 'hitl_escalations') }}

    {{ move_to_archive('public.messages', 'm', 'conversation_id', 'archive.messages_archived',
         'company_id, id, conversation_id, chatbot_id, sender_type, sender_id, content, processing_time_ms, token_count, '
         ~ 'created_at', 'messages') }}

    {{ move_to_archive('public.conversations', 'c', 'id', 'archive.conversations_archived',
         'company_id, id, chatbot_id, end_user_id, channel, status, is_hitl_active, assigned_operator_id, '
         ~ 'hitl_escalated_at, bot_turns_without_resolution, last_message_at, closed_at, created_at, updated_at',
         'conversations') }}
  end loop;
  return v_out;
end;
$$;
comment on function private.archive_conversations_batch(timestamptz, integer) is
  'One archival batch: moves up to p_limit closed conversations older than their plan''s archive_after_days that no active legal hold covers, with their messages, reactions, '
  'knowledge queries and HITL escalations, from the live tables to archive.*_archived, company by company, in the caller''s transaction; returns rows moved per table.';

create function private.archive_integration_logs_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  k record;
  v_ids uuid[];
  v_left integer := p_limit;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_moved bigint := 0;
  n bigint;
begin
  perform private.lifecycle_require_privileges();
  for k in select c.company_id, c.archive_before from private.lifecycle_cutoffs(p_as_of) c where not c.company_held loop
    exit when v_left < 1;
    select coalesce(pg_catalog.array_agg(x.id), '{}') into v_ids
      from (select l.id from public.integration_logs l where {{ old_logs('l', 'archive_before') }}
             limit v_left for update of l skip locked) x;
    continue when pg_catalog.cardinality(v_ids) = 0;
    with moved as (
      delete from public.integration_logs l where l.company_id = k.company_id and l.id = any (v_ids)
      returning l.*)
    insert into archive.integration_logs_archived
      (company_id, id, integration_id, direction, operation, status, http_status, latency_ms, error_message, request_id, created_at, archived_at)
    select company_id, id, integration_id, direction, operation, status, http_status, latency_ms, error_message, request_id, created_at, v_now
      from moved;
    get diagnostics n = row_count;
    v_moved := v_moved + n;
    v_left := v_left - n::integer;
  end loop;
  return case when v_moved = 0 then '{}'::jsonb else pg_catalog.jsonb_build_object('integration_logs', v_moved) end;
end;
$$;
comment on function private.archive_integration_logs_batch(timestamptz, integer) is
  'One archival batch: moves up to p_limit integration logs older than their plan''s archive_after_days (no company-wide hold) to archive.integration_logs_archived, company by company.';

create function private.archive_analytics_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  k record;
  v_bots uuid[];
  v_days date[];
  v_left integer := p_limit;
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_moved bigint := 0;
  n bigint;
begin
  perform private.lifecycle_require_privileges();
  for k in select c.company_id, c.archive_before from private.lifecycle_cutoffs(p_as_of) c where not c.company_held loop
    exit when v_left < 1;
    select coalesce(pg_catalog.array_agg(x.chatbot_id), '{}'), coalesce(pg_catalog.array_agg(x.day), '{}') into v_bots, v_days
      from (select a.chatbot_id, a.day from public.analytics_daily a where {{ old_days('a', 'archive_before') }}
             limit v_left for update of a skip locked) x;
    continue when pg_catalog.cardinality(v_days) = 0;
    with moved as (
      delete from public.analytics_daily a using unnest(v_bots, v_days) b(chatbot_id, day)
       where a.company_id = k.company_id and a.chatbot_id = b.chatbot_id and a.day = b.day
      returning a.*)
    insert into archive.analytics_archived
      (company_id, chatbot_id, day, conversations_count, new_conversations_count, messages_count, end_user_messages_count,
       bot_messages_count, operator_messages_count, hitl_escalations, avg_processing_time_ms, positive_reactions,
       negative_reactions, knowledge_queries_count, refreshed_at, archived_at)
    select company_id, chatbot_id, day, conversations_count, new_conversations_count, messages_count, end_user_messages_count,
           bot_messages_count, operator_messages_count, hitl_escalations, avg_processing_time_ms, positive_reactions,
           negative_reactions, knowledge_queries_count, refreshed_at, v_now
      from moved;
    get diagnostics n = row_count;
    v_moved := v_moved + n;
    v_left := v_left - n::integer;
  end loop;
  return case when v_moved = 0 then '{}'::jsonb else pg_catalog.jsonb_build_object('analytics_daily', v_moved) end;
end;
$$;
comment on function private.archive_analytics_batch(timestamptz, integer) is
  'One archival batch: moves up to p_limit analytics_daily rows whose UTC day is older than their plan''s archive_after_days (no company-wide hold) to archive.analytics_archived, company by company.';

create function private.archive_preview(p_as_of timestamptz) returns jsonb
  language plpgsql
  stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  k record;
  v_out jsonb := '{}'::jsonb;
begin
  -- PL/pgSQL, company by company: the same rules as the batches (Citus plans no SQL
  -- function with parameters over a distributed table)
  for k in select c.company_id, c.archive_before from private.lifecycle_cutoffs(p_as_of) c where not c.company_held loop
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object(
{%- for table in children | reverse %}
      '{{ table | replace("public.", "") }}', (select pg_catalog.count(*) from {{ table }} r
                              where r.company_id = k.company_id
                                and r.conversation_id in (select c.id from public.conversations c where {{ archivable('c') }})),
{%- endfor %}
      'conversations', (select pg_catalog.count(*) from public.conversations c where {{ archivable('c') }}),
      'integration_logs', (select pg_catalog.count(*) from public.integration_logs l where {{ old_logs('l', 'archive_before') }}),
      'analytics_daily', (select pg_catalog.count(*) from public.analytics_daily a where {{ old_days('a', 'archive_before') }})));
  end loop;
  return v_out;
end;
$$;
comment on function private.archive_preview(timestamptz) is
  'What public.job_archive() would move as of p_as_of, per live table (its dry run and its progress total).';

-- ---------------------------------------------------------------------------
-- Cold export (the CLI's `jobs run cold-export`, runner/neurant_db/cold_storage.py)
-- ---------------------------------------------------------------------------

create function private.cold_export_keys(p_company_id uuid, p_as_of timestamptz, p_limit integer,
                                         out o_conversations uuid[], out o_logs uuid[],
                                         out o_bots uuid[], out o_days date[])
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  k record;
begin
  perform private.lifecycle_require_privileges();
  o_conversations := '{}'; o_logs := '{}'; o_bots := '{}'; o_days := '{}';
  select c.company_id, c.cold_before into k
    from private.lifecycle_cutoffs(p_as_of) c where c.company_id = p_company_id and not c.company_held;
  if not found then
    return;
  end if;
  -- Locked until the export commits (archive rows: nobody but the jobs writes them).
  select coalesce(pg_catalog.array_agg(x.id), '{}') into o_conversations
    from (select c.id from archive.conversations_archived c
           where c.company_id = k.company_id and c.closed_at < k.cold_before
             and {{ not_held('k.company_id', 'c.id') }}
           limit p_limit for update of c) x;
  select coalesce(pg_catalog.array_agg(x.id), '{}') into o_logs
    from (select l.id from archive.integration_logs_archived l where {{ old_logs('l', 'cold_before') }}
           limit p_limit for update of l) x;
  select coalesce(pg_catalog.array_agg(x.chatbot_id), '{}'), coalesce(pg_catalog.array_agg(x.day), '{}') into o_bots, o_days
    from (select a.chatbot_id, a.day from archive.analytics_archived a where {{ old_days('a', 'cold_before') }}
           limit p_limit for update of a) x;
end;
$$;
comment on function private.cold_export_keys(uuid, timestamptz, integer) is
  'The keys of one cold export of company p_company_id, locked until its transaction ends: up to p_limit archived conversations older than the plan''s cold_after_days '
  'that no active legal hold covers, and up to p_limit archived integration logs and analytics days as old (no company-wide hold).';

create function private.cold_export_preview(p_as_of timestamptz) returns jsonb
  language plpgsql
  stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  k record;
  v_out jsonb := '{}'::jsonb;
begin
  for k in select c.company_id, c.cold_before from private.lifecycle_cutoffs(p_as_of) c where not c.company_held loop
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object(
      'archive.conversations_archived', (select pg_catalog.count(*) from archive.conversations_archived c
                                          where c.company_id = k.company_id and c.closed_at < k.cold_before
                                            and {{ not_held('k.company_id', 'c.id') }}),
      'archive.integration_logs_archived', (select pg_catalog.count(*) from archive.integration_logs_archived l
                                             where {{ old_logs('l', 'cold_before') }}),
      'archive.analytics_archived', (select pg_catalog.count(*) from archive.analytics_archived a where {{ old_days('a', 'cold_before') }})));
  end loop;
  return coalesce((select pg_catalog.jsonb_object_agg(e.key, e.value) from pg_catalog.jsonb_each(v_out) e where e.value::text <> '0'),
                  '{}'::jsonb);
end;
$$;
comment on function private.cold_export_preview(timestamptz) is
  'What `neurant-db jobs run cold-export` would take as of p_as_of: archived conversations, integration logs and analytics days past their plan''s cold_after_days that no active legal hold covers.';

-- ---------------------------------------------------------------------------
-- The job (CALL outside a transaction block: it commits per batch)
-- ---------------------------------------------------------------------------

create procedure public.job_archive(
  inout p_run_id bigint default null,
  p_batch_size integer default 1000,
  p_max_batches integer default null,
  p_dry_run boolean default false,
  p_as_of timestamptz default null)
  language plpgsql
as $$
declare
  v_as_of pg_catalog.timestamptz := coalesce(p_as_of, pg_catalog.now());
  v_total pg_catalog.jsonb;
  v_batch pg_catalog.jsonb;
  v_step pg_catalog.text;
  v_err pg_catalog.text;
  v_batches integer := 0;
begin
  perform private.job_require_trusted_path(pg_catalog.current_schemas(true));
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 100000 then
    raise exception using errcode = '22023', message = pg_catalog.format('p_batch_size must be 1..100000, not %s', p_batch_size);
  end if;
  p_run_id := private.job_start('archive', pg_catalog.jsonb_build_object(
    'batch_size', p_batch_size, 'max_batches', p_max_batches, 'as_of', v_as_of), p_dry_run);
  commit;
  v_total := private.archive_preview(v_as_of);
  if p_dry_run then
    update private.job_runs set rows_moved = v_total where id = p_run_id;
    perform private.job_finish(p_run_id, 'succeeded');
    commit;
    return;
  end if;
  raise notice 'neurant.progress %', pg_catalog.jsonb_build_object('run_id', p_run_id, 'step', 'start', 'done', '{}'::pg_catalog.jsonb, 'total', v_total);
  <<steps>>
  foreach v_step in array array['conversations', 'integration_logs', 'analytics'] loop
    loop
      exit steps when p_max_batches is not null and v_batches >= p_max_batches;
      begin
        v_batch := case v_step
          when 'conversations' then private.archive_conversations_batch(v_as_of, p_batch_size)
          when 'integration_logs' then private.archive_integration_logs_batch(v_as_of, p_batch_size)
          else private.archive_analytics_batch(v_as_of, p_batch_size) end;
      exception when others then
        v_err := sqlerrm;
      end;
      exit steps when v_err is not null;
      exit when private.batch_rows(v_batch) = 0;
      v_batches := v_batches + 1;
      perform private.job_progress(p_run_id, v_step, v_batch, v_total);
      commit;
    end loop;
  end loop;
  perform private.job_finish(p_run_id, case when v_err is null then 'succeeded' else 'failed' end, v_err);
  commit;
  if v_err is not null then
    raise exception using errcode = 'P0001', message = pg_catalog.format('archive job run %s failed: %s', p_run_id, v_err),
      hint = 'Batches committed before the error stay done; fix the cause and run the job again.';
  end if;
end;
$$;
comment on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz) is
  'Job "archive": moves closed conversations (with messages, reactions, knowledge queries, escalations), integration logs and daily analytics older than '
  'their plan''s archive_after_days to the archive schema, p_batch_size per transaction, skipping legal holds; resumable and idempotent (a re-run continues '
  'where the last committed batch ended). p_as_of (default now()) fixes the clock; p_dry_run counts only. Progress in private.job_runs (id returned in p_run_id). doctor: allow function.search_path a procedure that commits cannot carry a SET clause: every name in it is qualified and it first calls private.job_require_trusted_path.';

-- Privileges: the jobs are for service_role (and the owner / pg_cron).
revoke execute on function private.lock_conversation_rows(uuid, uuid[]),
  private.cold_export_keys(uuid, timestamptz, integer),
  private.cold_export_preview(timestamptz),
  private.archive_conversations_batch(timestamptz, integer),
  private.archive_integration_logs_batch(timestamptz, integer),
  private.archive_analytics_batch(timestamptz, integer),
  private.archive_preview(timestamptz)
  from public, anon, authenticated;
grant execute on function private.lock_conversation_rows(uuid, uuid[]),
  private.cold_export_keys(uuid, timestamptz, integer),
  private.cold_export_preview(timestamptz),
  private.archive_conversations_batch(timestamptz, integer),
  private.archive_integration_logs_batch(timestamptz, integer),
  private.archive_analytics_batch(timestamptz, integer),
  private.archive_preview(timestamptz)
  to service_role;
revoke execute on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz) from public, anon, authenticated;
grant execute on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz) to service_role;
