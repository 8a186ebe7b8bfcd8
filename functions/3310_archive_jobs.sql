-- Why: the archive move of the data lifecycle (active -> archive tables after the plan's
-- archive_after_days). Each batch is one function call, one transaction: the insert into
-- the archive and the delete from the live table commit together, so a row is in exactly
-- one place at every instant. public.job_archive commits after every batch (a procedure
-- carries no SET clause, which would forbid COMMIT: every name is schema-qualified
-- instead). The eligibility functions are shared with the cold export of the CLI.

-- ---------------------------------------------------------------------------
-- Eligibility (inlined SQL functions: the jobs, their previews and the cold export share them)
-- ---------------------------------------------------------------------------

create function private.archivable_conversations(p_as_of timestamptz)
returns table (company_id uuid, id uuid)
  language sql
  stable
as $$
  select c.company_id, c.id
    from private.lifecycle_cutoffs(p_as_of) k
    join public.conversations c
      on c.company_id = k.company_id and c.status = 'closed' and c.closed_at < k.archive_before
   where not k.company_held
     and not exists (select 1 from public.legal_holds h
                      where h.company_id = c.company_id and h.released_at is null and h.conversation_id = c.id)
$$;
comment on function private.archivable_conversations(timestamptz) is
  'Closed live conversations whose closed_at is older than their plan''s archive_after_days and that no active legal hold covers. doctor: allow function.search_path inlined into the job batches (a SET clause would stop the inlining and make every batch compute all candidates); every name in it is qualified and its callers fix the path.';

create function private.cold_conversations(p_as_of timestamptz)
returns table (company_id uuid, id uuid)
  language sql
  stable
as $$
  select c.company_id, c.id
    from private.lifecycle_cutoffs(p_as_of) k
    join archive.conversations_archived c on c.company_id = k.company_id and c.closed_at < k.cold_before
   where not k.company_held
     and not exists (select 1 from public.legal_holds h
                      where h.company_id = c.company_id and h.released_at is null and h.conversation_id = c.id)
$$;
comment on function private.cold_conversations(timestamptz) is
  'Archived conversations older than their plan''s cold_after_days (by closed_at) that no active legal hold covers: what the cold export takes. doctor: allow function.search_path inlined into the job batches (a SET clause would stop the inlining and make every batch compute all candidates); every name in it is qualified and its callers fix the path.';

-- ---------------------------------------------------------------------------
-- Jobs never wait on a member (issue 20, item 3)
-- ---------------------------------------------------------------------------

create function private.lock_conversation_rows(p_companies uuid[], p_ids uuid[],
                                               out o_companies uuid[], out o_ids uuid[])
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_companies uuid[];
  v_ids uuid[];
begin
  -- Lock every live child row of the claimed conversations, skipping what another transaction
  -- holds (a member's uncommitted reaction holds its message, an uncommitted delete the row).
  select coalesce(pg_catalog.array_agg(t.company_id), '{}'), coalesce(pg_catalog.array_agg(t.conversation_id), '{}')
    into v_companies, v_ids
    from (select x.company_id, x.conversation_id
            from (select m.company_id, m.conversation_id
                    from public.messages m
                    join unnest(p_companies, p_ids) b(company_id, id)
                      on m.company_id = b.company_id and m.conversation_id = b.id
                     for update of m skip locked) x
          union all
          select x.company_id, x.conversation_id
            from (select r.company_id, r.conversation_id
                    from public.message_reactions r
                    join unnest(p_companies, p_ids) b(company_id, id)
                      on r.company_id = b.company_id and r.conversation_id = b.id
                     for update of r skip locked) x
          union all
          select x.company_id, x.conversation_id
            from (select q.company_id, q.conversation_id
                    from public.knowledge_queries q
                    join unnest(p_companies, p_ids) b(company_id, id)
                      on q.company_id = b.company_id and q.conversation_id = b.id
                     for update of q skip locked) x
          union all
          select x.company_id, x.conversation_id
            from (select e.company_id, e.conversation_id
                    from public.hitl_escalations e
                    join unnest(p_companies, p_ids) b(company_id, id)
                      on e.company_id = b.company_id and e.conversation_id = b.id
                     for update of e skip locked) x) t;
  -- Keep the conversations whose every row is now locked by this transaction; the others stay
  -- live, untouched, for the next batch or run.
  select coalesce(pg_catalog.array_agg(b.company_id), '{}'), coalesce(pg_catalog.array_agg(b.id), '{}')
    into o_companies, o_ids
    from unnest(p_companies, p_ids) b(company_id, id)
    left join (select l.company_id, l.id, pg_catalog.count(*) as n
                 from unnest(v_companies, v_ids) l(company_id, id)
                group by l.company_id, l.id) l
      on l.company_id = b.company_id and l.id = b.id
   where coalesce(l.n, 0)
         = (select pg_catalog.count(*) from public.messages m where m.company_id = b.company_id and m.conversation_id = b.id)
         + (select pg_catalog.count(*) from public.message_reactions r where r.company_id = b.company_id and r.conversation_id = b.id)
         + (select pg_catalog.count(*) from public.knowledge_queries q where q.company_id = b.company_id and q.conversation_id = b.id)
         + (select pg_catalog.count(*) from public.hitl_escalations e where e.company_id = b.company_id and e.conversation_id = b.id);
end;
$$;
comment on function private.lock_conversation_rows(uuid[], uuid[]) is
  'Locks, without waiting, every message, reaction, knowledge query and HITL escalation of the given (already locked) live conversations, and returns the conversations whose rows are all locked now: one with a row another transaction holds (a member''s open transaction) is left for a later batch or run, so a job never waits on a member.';

-- ---------------------------------------------------------------------------
-- One batch of each move (callable in a transaction: the pgTAP suites use them)
-- ---------------------------------------------------------------------------

create function private.archive_conversations_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_companies uuid[];
  v_ids uuid[];
  v_now timestamptz := pg_catalog.clock_timestamp();
  v_out jsonb := '{}'::jsonb;
  n bigint;
begin
  perform private.lifecycle_require_privileges();
  -- 1. claim a batch of conversations; rows another transaction holds are skipped (next batch/run)
  select coalesce(array_agg(c.company_id), '{}'), coalesce(array_agg(c.id), '{}') into v_companies, v_ids
    from (select c.company_id, c.id
            from public.conversations c
            join (select e.company_id, e.id from private.archivable_conversations(p_as_of) e limit p_limit) e
              on e.company_id = c.company_id and e.id = c.id
             for update of c skip locked) c;
  if pg_catalog.cardinality(v_ids) = 0 then
    return v_out;
  end if;
  -- 2. lock their messages and child rows without waiting (a conversation with a row another
  --    transaction holds waits for a later batch or run); a concurrent reaction / knowledge
  --    query on a locked message now waits for this batch and then fails its foreign key
  --    check, instead of being lost by a cascade
  select l.o_companies, l.o_ids into v_companies, v_ids
    from private.lock_conversation_rows(v_companies, v_ids) l;
  -- 3. move children first (archive FKs are deferred to commit); every delete returns
  --    exactly the rows inserted, in the same statement
  with moved as (
    delete from public.message_reactions r using public.messages m, unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id and r.company_id = m.company_id and r.message_id = m.id
    returning r.*)
  insert into archive.message_reactions_archived
    (company_id, id, message_id, conversation_id, chatbot_id, reaction, rating, comment, created_by, created_at, archived_at)
  select company_id, id, message_id, conversation_id, chatbot_id, reaction, rating, comment, created_by, created_at, v_now from moved;
  get diagnostics n = row_count;
  v_out := v_out || pg_catalog.jsonb_build_object('message_reactions', n);

  with moved as (
    delete from public.knowledge_queries q using public.messages m, unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id and q.company_id = m.company_id and q.message_id = m.id
    returning q.*)
  insert into archive.knowledge_queries_archived
    (company_id, id, conversation_id, message_id, chatbot_id, chunk_id, document_id, similarity, rank, created_at, archived_at)
  select company_id, id, conversation_id, message_id, chatbot_id, chunk_id, document_id, similarity, rank, created_at, v_now from moved;
  get diagnostics n = row_count;
  v_out := v_out || pg_catalog.jsonb_build_object('knowledge_queries', n);

  with moved as (
    delete from public.hitl_escalations e using unnest(v_companies, v_ids) b(company_id, id)
     where e.company_id = b.company_id and e.conversation_id = b.id
    returning e.*)
  insert into archive.hitl_escalations_archived
    (company_id, id, conversation_id, chatbot_id, reason, detail, escalated_by, created_at, archived_at)
  select company_id, id, conversation_id, chatbot_id, reason, detail, escalated_by, created_at, v_now from moved;
  get diagnostics n = row_count;
  v_out := v_out || pg_catalog.jsonb_build_object('hitl_escalations', n);

  with moved as (
    delete from public.messages m using unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id
    returning m.*)
  insert into archive.messages_archived
    (company_id, id, conversation_id, chatbot_id, sender_type, sender_id, content, processing_time_ms, token_count, created_at, archived_at)
  select company_id, id, conversation_id, chatbot_id, sender_type, sender_id, content, processing_time_ms, token_count, created_at, v_now from moved;
  get diagnostics n = row_count;
  v_out := v_out || pg_catalog.jsonb_build_object('messages', n);

  with moved as (
    delete from public.conversations c using unnest(v_companies, v_ids) b(company_id, id)
     where c.company_id = b.company_id and c.id = b.id
    returning c.*)
  insert into archive.conversations_archived
    (company_id, id, chatbot_id, end_user_id, channel, status, is_hitl_active, assigned_operator_id, hitl_escalated_at,
     bot_turns_without_resolution, last_message_at, closed_at, created_at, updated_at, archived_at)
  select company_id, id, chatbot_id, end_user_id, channel, status, is_hitl_active, assigned_operator_id, hitl_escalated_at,
         bot_turns_without_resolution, last_message_at, closed_at, created_at, updated_at, v_now from moved;
  get diagnostics n = row_count;
  v_out := v_out || pg_catalog.jsonb_build_object('conversations', n);
  return v_out;
end;
$$;
comment on function private.archive_conversations_batch(timestamptz, integer) is
  'One archival batch: moves up to p_limit archivable closed conversations (private.archivable_conversations) with their messages, reactions, '
  'knowledge queries and HITL escalations from the live tables to archive.*_archived, in the caller''s transaction; returns rows moved per table.';

create function private.archive_integration_logs_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  n bigint;
begin
  perform private.lifecycle_require_privileges();
  with batch as (
    select l.company_id, l.id
      from private.lifecycle_cutoffs(p_as_of) k
      join public.integration_logs l on l.company_id = k.company_id and l.created_at < k.archive_before
     where not k.company_held
     limit p_limit
       for update of l skip locked
  ), moved as (
    delete from public.integration_logs l using batch b
     where l.company_id = b.company_id and l.id = b.id
    returning l.*)
  insert into archive.integration_logs_archived
    (company_id, id, integration_id, direction, operation, status, http_status, latency_ms, error_message, request_id, created_at, archived_at)
  select company_id, id, integration_id, direction, operation, status, http_status, latency_ms, error_message, request_id, created_at,
         pg_catalog.clock_timestamp()
    from moved;
  get diagnostics n = row_count;
  return case when n = 0 then '{}'::jsonb else pg_catalog.jsonb_build_object('integration_logs', n) end;
end;
$$;
comment on function private.archive_integration_logs_batch(timestamptz, integer) is
  'One archival batch: moves up to p_limit integration logs older than their plan''s archive_after_days (no company-wide hold) to archive.integration_logs_archived.';

create function private.archive_analytics_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  n bigint;
begin
  perform private.lifecycle_require_privileges();
  with batch as (
    select a.company_id, a.chatbot_id, a.day
      from private.lifecycle_cutoffs(p_as_of) k
      join public.analytics_daily a
        on a.company_id = k.company_id and a.day < (k.archive_before at time zone 'UTC')::date
     where not k.company_held
     limit p_limit
       for update of a skip locked
  ), moved as (
    delete from public.analytics_daily a using batch b
     where a.company_id = b.company_id and a.chatbot_id = b.chatbot_id and a.day = b.day
    returning a.*)
  insert into archive.analytics_archived
    (company_id, chatbot_id, day, conversations_count, new_conversations_count, messages_count, end_user_messages_count,
     bot_messages_count, operator_messages_count, hitl_escalations, avg_processing_time_ms, positive_reactions,
     negative_reactions, knowledge_queries_count, refreshed_at, archived_at)
  select company_id, chatbot_id, day, conversations_count, new_conversations_count, messages_count, end_user_messages_count,
         bot_messages_count, operator_messages_count, hitl_escalations, avg_processing_time_ms, positive_reactions,
         negative_reactions, knowledge_queries_count, refreshed_at, pg_catalog.clock_timestamp()
    from moved;
  get diagnostics n = row_count;
  return case when n = 0 then '{}'::jsonb else pg_catalog.jsonb_build_object('analytics_daily', n) end;
end;
$$;
comment on function private.archive_analytics_batch(timestamptz, integer) is
  'One archival batch: moves up to p_limit analytics_daily rows whose UTC day is older than their plan''s archive_after_days (no company-wide hold) to archive.analytics_archived.';

create function private.archive_preview(p_as_of timestamptz) returns jsonb
  language sql
  stable
  set search_path = pg_catalog, pg_temp
as $$
  with c as (select * from private.archivable_conversations(p_as_of))
  select pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'message_reactions', (select pg_catalog.count(*) from public.message_reactions r join public.messages m on m.company_id = r.company_id and m.id = r.message_id
                            join c on c.company_id = m.company_id and c.id = m.conversation_id),
    'knowledge_queries', (select pg_catalog.count(*) from public.knowledge_queries q join public.messages m on m.company_id = q.company_id and m.id = q.message_id
                            join c on c.company_id = m.company_id and c.id = m.conversation_id),
    'hitl_escalations', (select pg_catalog.count(*) from public.hitl_escalations e join c on c.company_id = e.company_id and c.id = e.conversation_id),
    'messages', (select pg_catalog.count(*) from public.messages m join c on c.company_id = m.company_id and c.id = m.conversation_id),
    'conversations', (select pg_catalog.count(*) from c),
    'integration_logs', (select pg_catalog.count(*) from private.lifecycle_cutoffs(p_as_of) k
                           join public.integration_logs l on l.company_id = k.company_id and l.created_at < k.archive_before
                          where not k.company_held),
    'analytics_daily', (select pg_catalog.count(*) from private.lifecycle_cutoffs(p_as_of) k
                          join public.analytics_daily a on a.company_id = k.company_id and a.day < (k.archive_before at time zone 'UTC')::pg_catalog.date
                         where not k.company_held)))
$$;
comment on function private.archive_preview(timestamptz) is
  'What public.job_archive() would move as of p_as_of, per live table (its dry run and its progress total).';

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
revoke execute on function private.archivable_conversations(timestamptz),
  private.cold_conversations(timestamptz),
  private.lock_conversation_rows(uuid[], uuid[]),
  private.archive_conversations_batch(timestamptz, integer),
  private.archive_integration_logs_batch(timestamptz, integer),
  private.archive_analytics_batch(timestamptz, integer),
  private.archive_preview(timestamptz)
  from public, anon, authenticated;
grant execute on function private.archivable_conversations(timestamptz),
  private.cold_conversations(timestamptz),
  private.lock_conversation_rows(uuid[], uuid[]),
  private.archive_conversations_batch(timestamptz, integer),
  private.archive_integration_logs_batch(timestamptz, integer),
  private.archive_analytics_batch(timestamptz, integer),
  private.archive_preview(timestamptz)
  to service_role;
revoke execute on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz) from public, anon, authenticated;
grant execute on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz) to service_role;
