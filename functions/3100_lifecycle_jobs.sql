-- Why: the lifecycle jobs of DESIGN.md as plain SQL (pg_cron runs them where it exists,
-- `neurant-db jobs run NAME` elsewhere). Each job is a procedure that commits after every
-- batch; each batch is one function call, one transaction, so a row is in exactly one
-- place at every instant (the insert into the archive and the delete from the live table
-- commit together). Jobs that move or delete data share one session-level advisory lock
-- (never two runs at once); progress and counts are committed with every batch in
-- private.job_runs. Procedures carry no SET clause (it would forbid COMMIT): every name
-- is schema-qualified instead.

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

create function private.lifecycle_require_privileges() returns void
  language plpgsql
  stable
  set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_roles r
                  where r.rolname = current_user and (r.rolsuper or r.rolbypassrls)) then
    raise exception using errcode = '42501',
      message = format('lifecycle jobs must run as a role that bypasses row level security, not %s', current_user),
      hint = 'Run them as service_role (set role service_role) or as the database owner; under RLS a job would see no rows.';
  end if;
end;
$$;
comment on function private.lifecycle_require_privileges() is
  'Raises 42501 unless the current role bypasses RLS (superuser or BYPASSRLS, e.g. service_role): a job under RLS would silently move nothing.';

create function private.lifecycle_clock(p_as_of timestamptz) returns timestamptz
  language sql
  stable
  set search_path = ''
as $$
  -- A future "as of" would make recent data old enough to archive or delete. Only a
  -- superuser session that has not switched role (a DBA replaying, the test suite)
  -- may look forward; everyone else - service_role included - is clamped to now().
  select case
           when p_as_of <= pg_catalog.now() then p_as_of
           when coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user), false)
                and pg_catalog.current_setting('role') = 'none' then p_as_of
           else pg_catalog.now()
         end
$$;
comment on function private.lifecycle_clock(timestamptz) is
  'The time lifecycle ages are measured from: p_as_of when it is not in the future, else now() - unless the session is a superuser that has not switched role (replays, tests).';
revoke execute on function private.lifecycle_clock(timestamptz) from public, anon, authenticated;
grant execute on function private.lifecycle_clock(timestamptz) to service_role;

create function private.lifecycle_cutoffs(p_as_of timestamptz)
returns table (company_id uuid, archive_before timestamptz, cold_before timestamptz,
               delete_before timestamptz, company_held boolean)
  language sql
  stable
as $$
  select co.id,
         private.lifecycle_clock(p_as_of) - pg_catalog.make_interval(days => p.archive_after_days),
         private.lifecycle_clock(p_as_of) - pg_catalog.make_interval(days => p.cold_after_days),
         private.lifecycle_clock(p_as_of) - pg_catalog.make_interval(days => p.delete_after_days),
         exists (select 1 from public.legal_holds h
                  where h.company_id = co.id and h.released_at is null and h.conversation_id is null)
    from public.companies co
    join public.subscription_plans p on p.code = co.subscription_plan
$$;
comment on function private.lifecycle_cutoffs(timestamptz) is
  'Per company, as of private.lifecycle_clock(p_as_of): the times before which data is archived, exported to cold storage and deleted (from its plan''s retention days), and whether a company-wide legal hold is active.';

create function private.conversation_is_held(p_company_id uuid, p_conversation_id uuid) returns boolean
  language sql
  stable
as $$
  select exists (select 1 from public.legal_holds h
                  where h.company_id = p_company_id and h.released_at is null
                    and (h.conversation_id is null or h.conversation_id = p_conversation_id))
$$;
comment on function private.conversation_is_held(uuid, uuid) is
  'True when an active legal hold covers the conversation (a hold on it or on its whole company).';

create function private.jsonb_add_counts(p_a jsonb, p_b jsonb) returns jsonb
  language sql
  immutable
  parallel safe
as $$
  select coalesce(pg_catalog.jsonb_object_agg(k, v), '{}'::jsonb)
    from (select e.key as k, sum(e.value::numeric)::bigint as v
            from (select * from pg_catalog.jsonb_each_text(coalesce(p_a, '{}'::jsonb))
                  union all
                  select * from pg_catalog.jsonb_each_text(coalesce(p_b, '{}'::jsonb))) e
           group by e.key) s
$$;
comment on function private.jsonb_add_counts(jsonb, jsonb) is
  'Adds two {"table": count} objects key by key (job counters).';

create function private.job_lock_key(p_job text) returns integer
  language sql
  immutable
  parallel safe
as $$
  -- second key of the advisory lock (first: 0x4E455552 'NEUR', shared with the migration lock = 1)
  select case when p_job in ('archive', 'cold-export', 'retention') then 2
              when p_job = 'analytics' then 3
              when p_job = 'metrics' then 4
              else 5 end
$$;
comment on function private.job_lock_key(text) is
  'Advisory lock of a job: archive, cold-export and retention share key (NEUR, 2) so they never overlap; analytics (NEUR, 3), metrics (NEUR, 4). Migrations hold (NEUR, 1).';

create function private.job_start(p_job text, p_params jsonb, p_dry_run boolean) returns bigint
  language plpgsql
  volatile
  set search_path = ''
as $$
declare
  v_key integer := private.job_lock_key(p_job);
  v_holder text;
  v_id bigint;
begin
  perform private.lifecycle_require_privileges();
  if not pg_catalog.pg_try_advisory_lock(1313166674, v_key) then
    select coalesce(r.job || ' run ' || r.id || ' (pid ' || r.backend_pid || ', started ' || r.started_at || ')', 'another session')
      into v_holder
      from private.job_runs r
     where r.status = 'running' and private.job_lock_key(r.job) = v_key
     order by r.id desc limit 1;
    raise exception using errcode = '55P03',
      message = format('job %s cannot start: %s is running', p_job, coalesce(v_holder, 'another session')),
      hint = 'Wait for it to finish; a killed run releases its lock with its session.';
  end if;
  -- We hold the lock: any run of this lock group still marked running lost its session.
  update private.job_runs r
     set status = 'interrupted', finished_at = pg_catalog.clock_timestamp(),
         error = coalesce(r.error, 'the session running the job ended before it finished')
   where r.status = 'running' and private.job_lock_key(r.job) = v_key;
  insert into private.job_runs (job, dry_run, params)
  values (p_job, coalesce(p_dry_run, false), coalesce(p_params, '{}'::jsonb))
  returning id into v_id;
  return v_id;
end;
$$;
comment on function private.job_start(text, jsonb, boolean) is
  'Starts a job run: takes the job''s session advisory lock (55P03 when another run holds it), marks runs of the group whose session died as interrupted, '
  'inserts the private.job_runs row and returns its id.';

create function private.job_finish(p_run_id bigint, p_status text, p_error text default null) returns void
  language plpgsql
  volatile
  set search_path = ''
as $$
declare
  v_job text;
begin
  update private.job_runs
     set status = p_status, finished_at = pg_catalog.clock_timestamp(), error = p_error
   where id = p_run_id
  returning job into v_job;
  if v_job is not null then
    perform pg_catalog.pg_advisory_unlock(1313166674, private.job_lock_key(v_job));
  end if;
end;
$$;
comment on function private.job_finish(bigint, text, text) is
  'Ends a job run (succeeded or failed with its error) and releases the job''s advisory lock.';

create function private.job_progress(p_run_id bigint, p_step text, p_batch jsonb, p_total jsonb)
returns jsonb
  language plpgsql
  volatile
  set search_path = ''
as $$
declare
  v_rows jsonb;
  v_batches integer;
begin
  update private.job_runs
     set batches = batches + 1, rows_moved = private.jsonb_add_counts(rows_moved, p_batch)
   where id = p_run_id
  returning rows_moved, batches into v_rows, v_batches;
  raise notice 'neurant.progress %', pg_catalog.jsonb_build_object(
    'run_id', p_run_id, 'step', p_step, 'batches', v_batches, 'batch', p_batch, 'done', v_rows, 'total', p_total);
  return v_rows;
end;
$$;
comment on function private.job_progress(bigint, text, jsonb, jsonb) is
  'Records a committed batch in private.job_runs (batches + 1, counts added) and reports progress as a NOTICE "neurant.progress {json}" (the CLI''s progress bar).';

create function private.batch_rows(p_batch jsonb) returns bigint
  language sql
  immutable
  parallel safe
as $$
  select coalesce(sum(e.value::numeric), 0)::bigint from pg_catalog.jsonb_each_text(coalesce(p_batch, '{}'::jsonb)) e
$$;
comment on function private.batch_rows(jsonb) is 'Total rows of a {"table": count} batch result.';

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
  'Closed live conversations whose closed_at is older than their plan''s archive_after_days and that no active legal hold covers.';

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
  'Archived conversations older than their plan''s cold_after_days (by closed_at) that no active legal hold covers: what the cold export takes.';

-- ---------------------------------------------------------------------------
-- One batch of each move (callable in a transaction: the pgTAP suites use them)
-- ---------------------------------------------------------------------------

create function private.archive_conversations_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = ''
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
  -- 2. lock their messages: a concurrent reaction / knowledge query on one of them now waits
  --    for this batch and then fails its foreign key check, instead of being lost by a cascade
  perform 1 from public.messages m
    join unnest(v_companies, v_ids) b(company_id, id) on m.company_id = b.company_id and m.conversation_id = b.id
     for update of m;
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
  set search_path = ''
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
  set search_path = ''
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
as $$
  with c as (select * from private.archivable_conversations(p_as_of))
  select pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
    'message_reactions', (select count(*) from public.message_reactions r join public.messages m on m.company_id = r.company_id and m.id = r.message_id
                            join c on c.company_id = m.company_id and c.id = m.conversation_id),
    'knowledge_queries', (select count(*) from public.knowledge_queries q join public.messages m on m.company_id = q.company_id and m.id = q.message_id
                            join c on c.company_id = m.company_id and c.id = m.conversation_id),
    'hitl_escalations', (select count(*) from public.hitl_escalations e join c on c.company_id = e.company_id and c.id = e.conversation_id),
    'messages', (select count(*) from public.messages m join c on c.company_id = m.company_id and c.id = m.conversation_id),
    'conversations', (select count(*) from c),
    'integration_logs', (select count(*) from private.lifecycle_cutoffs(p_as_of) k
                           join public.integration_logs l on l.company_id = k.company_id and l.created_at < k.archive_before
                          where not k.company_held),
    'analytics_daily', (select count(*) from private.lifecycle_cutoffs(p_as_of) k
                          join public.analytics_daily a on a.company_id = k.company_id and a.day < (k.archive_before at time zone 'UTC')::date
                         where not k.company_held)))
$$;
comment on function private.archive_preview(timestamptz) is
  'What public.job_archive() would move as of p_as_of, per live table (its dry run and its progress total).';

-- ---------------------------------------------------------------------------
-- Compliance retention: delete what is older than delete_after_days, wherever it is
-- ---------------------------------------------------------------------------

create function private.purge_audit_logs(p_as_of timestamptz, p_limit integer) returns bigint
  language plpgsql
  volatile
  security definer
  set search_path = ''
as $$
declare
  n bigint;
begin
  -- The purge hook of 2030_audit: only the table owner (this function's owner) with
  -- neurant.audit_purge = on may delete. Ages are measured from lifecycle_clock():
  -- only a superuser session may move the clock forward. Never younger than 7 years (2555 days),
  -- whatever a plan says; a company-wide legal hold keeps the company's trail.
  perform pg_catalog.set_config('neurant.audit_purge', 'on', true);
  delete from public.audit_logs a
   where (a.company_id, a.id) in (
     select l.company_id, l.id
       from public.audit_logs l
       left join public.companies co on co.id = l.company_id
       left join public.subscription_plans p on p.code = co.subscription_plan
      where l.created_at < private.lifecycle_clock(p_as_of) - pg_catalog.make_interval(days => greatest(coalesce(p.delete_after_days, 2555), 2555))
        and not exists (select 1 from public.legal_holds h
                         where h.company_id = l.company_id and h.released_at is null and h.conversation_id is null)
      limit p_limit);
  get diagnostics n = row_count;
  perform pg_catalog.set_config('neurant.audit_purge', '', true);
  return n;
end;
$$;
comment on function private.purge_audit_logs(timestamptz, integer) is
  'Retention: deletes up to p_limit audit rows older than max(plan delete_after_days, 2555 days) not under a company-wide legal hold, through the audit purge hook (runs as the table owner).';
revoke execute on function private.purge_audit_logs(timestamptz, integer) from public, anon, authenticated;

create function private.retention_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = ''
as $$
declare
  v_companies uuid[];
  v_ids uuid[];
  v_out jsonb := '{}'::jsonb;
  n bigint;
begin
  perform private.lifecycle_require_privileges();

  -- live closed conversations past retention (the archive job never took them)
  select coalesce(array_agg(c.company_id), '{}'), coalesce(array_agg(c.id), '{}') into v_companies, v_ids
    from (select c.company_id, c.id
            from private.lifecycle_cutoffs(p_as_of) k
            join public.conversations c on c.company_id = k.company_id and c.status = 'closed' and c.closed_at < k.delete_before
           where not k.company_held
             and not exists (select 1 from public.legal_holds h
                              where h.company_id = c.company_id and h.released_at is null and h.conversation_id = c.id)
           limit p_limit
             for update of c skip locked) c;
  if pg_catalog.cardinality(v_ids) > 0 then
    perform 1 from public.messages m
      join unnest(v_companies, v_ids) b(company_id, id) on m.company_id = b.company_id and m.conversation_id = b.id
       for update of m;
    delete from public.message_reactions r using public.messages m, unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id and r.company_id = m.company_id and r.message_id = m.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.message_reactions', n));
    delete from public.knowledge_queries q using public.messages m, unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id and q.company_id = m.company_id and q.message_id = m.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.knowledge_queries', n));
    delete from public.hitl_escalations e using unnest(v_companies, v_ids) b(company_id, id)
     where e.company_id = b.company_id and e.conversation_id = b.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.hitl_escalations', n));
    delete from public.messages m using unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.messages', n));
    delete from public.conversations c using unnest(v_companies, v_ids) b(company_id, id)
     where c.company_id = b.company_id and c.id = b.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.conversations', n));
  end if;

  -- archived conversations past retention (the cold export did not take them)
  select coalesce(array_agg(c.company_id), '{}'), coalesce(array_agg(c.id), '{}') into v_companies, v_ids
    from (select c.company_id, c.id
            from private.lifecycle_cutoffs(p_as_of) k
            join archive.conversations_archived c on c.company_id = k.company_id and c.closed_at < k.delete_before
           where not k.company_held
             and not exists (select 1 from public.legal_holds h
                              where h.company_id = c.company_id and h.released_at is null and h.conversation_id = c.id)
           limit p_limit
             for update of c skip locked) c;
  if pg_catalog.cardinality(v_ids) > 0 then
    delete from archive.message_reactions_archived r using archive.messages_archived m, unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id and r.company_id = m.company_id and r.message_id = m.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('archive.message_reactions_archived', n));
    delete from archive.knowledge_queries_archived q using archive.messages_archived m, unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id and q.company_id = m.company_id and q.message_id = m.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('archive.knowledge_queries_archived', n));
    delete from archive.hitl_escalations_archived e using unnest(v_companies, v_ids) b(company_id, id)
     where e.company_id = b.company_id and e.conversation_id = b.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('archive.hitl_escalations_archived', n));
    delete from archive.messages_archived m using unnest(v_companies, v_ids) b(company_id, id)
     where m.company_id = b.company_id and m.conversation_id = b.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('archive.messages_archived', n));
    delete from archive.conversations_archived c using unnest(v_companies, v_ids) b(company_id, id)
     where c.company_id = b.company_id and c.id = b.id;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('archive.conversations_archived', n));
  end if;

  -- integration logs and analytics, live and archived
  delete from public.integration_logs l using (
    select l.company_id, l.id from private.lifecycle_cutoffs(p_as_of) k
      join public.integration_logs l on l.company_id = k.company_id and l.created_at < k.delete_before
     where not k.company_held limit p_limit for update of l skip locked) b
   where l.company_id = b.company_id and l.id = b.id;
  get diagnostics n = row_count;
  v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.integration_logs', n));
  delete from archive.integration_logs_archived l using (
    select l.company_id, l.id from private.lifecycle_cutoffs(p_as_of) k
      join archive.integration_logs_archived l on l.company_id = k.company_id and l.created_at < k.delete_before
     where not k.company_held limit p_limit for update of l skip locked) b
   where l.company_id = b.company_id and l.id = b.id;
  get diagnostics n = row_count;
  v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('archive.integration_logs_archived', n));
  delete from public.analytics_daily a using (
    select a.company_id, a.chatbot_id, a.day from private.lifecycle_cutoffs(p_as_of) k
      join public.analytics_daily a on a.company_id = k.company_id and a.day < (k.delete_before at time zone 'UTC')::date
     where not k.company_held limit p_limit for update of a skip locked) b
   where a.company_id = b.company_id and a.chatbot_id = b.chatbot_id and a.day = b.day;
  get diagnostics n = row_count;
  v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.analytics_daily', n));
  delete from archive.analytics_archived a using (
    select a.company_id, a.chatbot_id, a.day from private.lifecycle_cutoffs(p_as_of) k
      join archive.analytics_archived a on a.company_id = k.company_id and a.day < (k.delete_before at time zone 'UTC')::date
     where not k.company_held limit p_limit for update of a skip locked) b
   where a.company_id = b.company_id and a.chatbot_id = b.chatbot_id and a.day = b.day;
  get diagnostics n = row_count;
  v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('archive.analytics_archived', n));

  v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.audit_logs', private.purge_audit_logs(p_as_of, p_limit)));
  -- platform samples are kept 400 days (no tenant, no hold)
  delete from public.system_metrics s using (
    select s.id from public.system_metrics s where s.recorded_at < p_as_of - interval '400 days' limit p_limit) b
   where s.id = b.id;
  get diagnostics n = row_count;
  v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.system_metrics', n));
  -- drop zero counters
  return coalesce((select pg_catalog.jsonb_object_agg(e.key, e.value) from pg_catalog.jsonb_each(v_out) e where e.value::text <> '0'), '{}'::jsonb);
end;
$$;
comment on function private.retention_batch(timestamptz, integer) is
  'One retention batch: deletes up to p_limit conversations (with their rows) and p_limit rows of each other kind that are older than their plan''s delete_after_days, '
  'live or archived, that no active legal hold covers; audit logs through private.purge_audit_logs(). Returns rows deleted per table.';

create function private.retention_preview(p_as_of timestamptz) returns jsonb
  language sql
  stable
as $$
  with k as (select * from private.lifecycle_cutoffs(p_as_of) where not company_held),
  lc as (select c.company_id, c.id from k join public.conversations c
           on c.company_id = k.company_id and c.status = 'closed' and c.closed_at < k.delete_before
          where not private.conversation_is_held(c.company_id, c.id)),
  ac as (select c.company_id, c.id from k join archive.conversations_archived c
           on c.company_id = k.company_id and c.closed_at < k.delete_before
          where not private.conversation_is_held(c.company_id, c.id))
  select coalesce((select pg_catalog.jsonb_object_agg(t, n) from (values
    ('public.conversations', (select count(*) from lc)),
    ('public.messages', (select count(*) from public.messages m join lc on lc.company_id = m.company_id and lc.id = m.conversation_id)),
    ('archive.conversations_archived', (select count(*) from ac)),
    ('archive.messages_archived', (select count(*) from archive.messages_archived m join ac on ac.company_id = m.company_id and ac.id = m.conversation_id)),
    ('public.integration_logs', (select count(*) from k join public.integration_logs l on l.company_id = k.company_id and l.created_at < k.delete_before)),
    ('archive.integration_logs_archived', (select count(*) from k join archive.integration_logs_archived l on l.company_id = k.company_id and l.created_at < k.delete_before)),
    ('public.analytics_daily', (select count(*) from k join public.analytics_daily a on a.company_id = k.company_id and a.day < (k.delete_before at time zone 'UTC')::date)),
    ('archive.analytics_archived', (select count(*) from k join archive.analytics_archived a on a.company_id = k.company_id and a.day < (k.delete_before at time zone 'UTC')::date))
  ) v(t, n) where n > 0), '{}'::jsonb)
$$;
comment on function private.retention_preview(timestamptz) is
  'What public.job_retention() would delete as of p_as_of (conversations and messages live/archived, logs, analytics; audit rows not counted): its dry run and progress total.';

-- ---------------------------------------------------------------------------
-- System metrics
-- ---------------------------------------------------------------------------

create function private.collect_system_metrics() returns jsonb
  language plpgsql
  volatile
  set search_path = ''
as $$
declare
  v_at timestamptz := pg_catalog.clock_timestamp();
  n bigint;
begin
  perform private.lifecycle_require_privileges();
  insert into public.system_metrics (metric_name, value, labels, recorded_at)
  select 'db.size_bytes', pg_catalog.pg_database_size(pg_catalog.current_database()),
         pg_catalog.jsonb_build_object('database', pg_catalog.current_database()), v_at
  union all
  select 'db.connections', count(*), pg_catalog.jsonb_build_object('state', coalesce(a.state, 'unknown')), v_at
    from pg_catalog.pg_stat_activity a
   where a.datname = pg_catalog.current_database() and a.backend_type = 'client backend'
   group by a.state
  union all
  select 'db.connections_max', pg_catalog.current_setting('max_connections')::double precision, '{}'::jsonb, v_at
  union all
  -- size and growth (bytes since the previous sample) of every table of the schema
  select m.metric_name, m.value, m.labels, v_at
    from (select c.oid, n.nspname || '.' || c.relname as rel, pg_catalog.pg_total_relation_size(c.oid)::double precision as bytes,
                 greatest(c.reltuples, 0)::double precision as tuples
            from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
           where c.relkind in ('r', 'p') and n.nspname in ('public', 'private', 'archive') and not c.relispartition) t
   cross join lateral (values
     ('table.total_bytes', t.bytes, pg_catalog.jsonb_build_object('table', t.rel)),
     ('table.rows_estimate', t.tuples, pg_catalog.jsonb_build_object('table', t.rel)),
     ('table.growth_bytes',
      t.bytes - coalesce((select s.value from public.system_metrics s
                           where s.metric_name = 'table.total_bytes' and s.labels = pg_catalog.jsonb_build_object('table', t.rel)
                           order by s.recorded_at desc limit 1), t.bytes),
      pg_catalog.jsonb_build_object('table', t.rel))) m(metric_name, value, labels)
  union all
  -- per tenant: stored document bytes (the plan counter) and rows of the big tables, live and archived
  select 'tenant.storage_bytes', co.current_storage_bytes, pg_catalog.jsonb_build_object('company_id', co.id), v_at
    from public.companies co
  union all
  select 'tenant.rows', s.n, pg_catalog.jsonb_build_object('company_id', s.company_id, 'table', s.t), v_at
    from (select company_id, 'public.conversations' as t, count(*) as n from public.conversations group by company_id
          union all select company_id, 'public.messages', count(*) from public.messages group by company_id
          union all select company_id, 'public.document_chunks', count(*) from public.document_chunks group by company_id
          union all select company_id, 'archive.conversations_archived', count(*) from archive.conversations_archived group by company_id
          union all select company_id, 'archive.messages_archived', count(*) from archive.messages_archived group by company_id) s
  union all
  select 'tenant.message_bytes', s.b, pg_catalog.jsonb_build_object('company_id', s.company_id), v_at
    from (select m.company_id, sum(pg_catalog.pg_column_size(m.content))::double precision as b
            from public.messages m group by m.company_id) s;
  get diagnostics n = row_count;
  return pg_catalog.jsonb_build_object('public.system_metrics', n);
end;
$$;
comment on function private.collect_system_metrics() is
  'Samples platform health into public.system_metrics: database size, connections by state, per-table size/row estimate/growth since the previous sample, '
  'per-tenant document storage, rows and message bytes (a full scan of the big tables: run it daily, off-peak).';

-- ---------------------------------------------------------------------------
-- The job procedures (CALL outside a transaction block: they COMMIT per batch)
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
  v_as_of timestamptz := coalesce(p_as_of, pg_catalog.now());
  v_total jsonb;
  v_batch jsonb;
  v_step text;
  v_err text;
  v_batches integer := 0;
begin
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 100000 then
    raise exception using errcode = '22023', message = format('p_batch_size must be 1..100000, not %s', p_batch_size);
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
  raise notice 'neurant.progress %', pg_catalog.jsonb_build_object('run_id', p_run_id, 'step', 'start', 'done', '{}'::jsonb, 'total', v_total);
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
    raise exception using errcode = 'P0001', message = format('archive job run %s failed: %s', p_run_id, v_err),
      hint = 'Batches committed before the error stay done; fix the cause and run the job again.';
  end if;
end;
$$;
comment on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz) is
  'Job "archive": moves closed conversations (with messages, reactions, knowledge queries, escalations), integration logs and daily analytics older than '
  'their plan''s archive_after_days to the archive schema, p_batch_size per transaction, skipping legal holds; resumable and idempotent (a re-run continues '
  'where the last committed batch ended). p_as_of (default now()) fixes the clock; p_dry_run counts only. Progress in private.job_runs (id returned in p_run_id).';

create procedure public.job_retention(
  inout p_run_id bigint default null,
  p_batch_size integer default 1000,
  p_max_batches integer default null,
  p_dry_run boolean default false,
  p_as_of timestamptz default null)
  language plpgsql
as $$
declare
  v_as_of timestamptz := coalesce(p_as_of, pg_catalog.now());
  v_total jsonb;
  v_batch jsonb;
  v_err text;
  v_batches integer := 0;
begin
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 100000 then
    raise exception using errcode = '22023', message = format('p_batch_size must be 1..100000, not %s', p_batch_size);
  end if;
  p_run_id := private.job_start('retention', pg_catalog.jsonb_build_object(
    'batch_size', p_batch_size, 'max_batches', p_max_batches, 'as_of', v_as_of), p_dry_run);
  commit;
  v_total := private.retention_preview(v_as_of);
  if p_dry_run then
    update private.job_runs set rows_moved = v_total where id = p_run_id;
    perform private.job_finish(p_run_id, 'succeeded');
    commit;
    return;
  end if;
  raise notice 'neurant.progress %', pg_catalog.jsonb_build_object('run_id', p_run_id, 'step', 'start', 'done', '{}'::jsonb, 'total', v_total);
  loop
    exit when p_max_batches is not null and v_batches >= p_max_batches;
    begin
      v_batch := private.retention_batch(v_as_of, p_batch_size);
    exception when others then
      v_err := sqlerrm;
    end;
    exit when v_err is not null or private.batch_rows(v_batch) = 0;
    v_batches := v_batches + 1;
    perform private.job_progress(p_run_id, 'delete', v_batch, v_total);
    commit;
  end loop;
  perform private.job_finish(p_run_id, case when v_err is null then 'succeeded' else 'failed' end, v_err);
  commit;
  if v_err is not null then
    raise exception using errcode = 'P0001', message = format('retention job run %s failed: %s', p_run_id, v_err),
      hint = 'Batches committed before the error stay done; fix the cause and run the job again.';
  end if;
end;
$$;
comment on procedure public.job_retention(bigint, integer, integer, boolean, timestamptz) is
  'Job "retention": deletes, live or archived, every conversation (with its rows), integration log and daily analytics row older than its plan''s delete_after_days, '
  'and audit rows older than 7 years, unless a legal hold covers them (system_metrics samples: after 400 days); p_batch_size per transaction. Dead tuples remain until VACUUM '
  '(`neurant-db jobs run retention` vacuums afterwards) and in WAL/backups until they expire: see docs/lifecycle.md.';

create procedure public.job_analytics(
  inout p_run_id bigint default null,
  p_days integer default 3,
  p_from date default null,
  p_to date default null,
  p_dry_run boolean default false)
  language plpgsql
as $$
declare
  v_to date := coalesce(p_to, (pg_catalog.now() at time zone 'UTC')::date);
  v_from date;
  v_day date;
  v_rows bigint;
  v_err text;
begin
  if p_days is null or p_days < 1 or p_days > 3660 then
    raise exception using errcode = '22023', message = format('p_days must be 1..3660, not %s', p_days);
  end if;
  v_from := coalesce(p_from, v_to - (p_days - 1));
  if v_from > v_to then
    raise exception using errcode = '22023', message = format('p_from (%s) is after p_to (%s)', v_from, v_to);
  end if;
  p_run_id := private.job_start('analytics', pg_catalog.jsonb_build_object('from', v_from, 'to', v_to), p_dry_run);
  commit;
  if p_dry_run then
    update private.job_runs set rows_moved = pg_catalog.jsonb_build_object('days', v_to - v_from + 1) where id = p_run_id;
    perform private.job_finish(p_run_id, 'succeeded');
    commit;
    return;
  end if;
  v_day := v_from;
  while v_day <= v_to loop
    begin
      call public.refresh_analytics_daily(v_day);
      select count(*) into v_rows from public.analytics_daily a where a.day = v_day;
    exception when others then
      v_err := format('%s: %s', v_day, sqlerrm);
    end;
    exit when v_err is not null;
    perform private.job_progress(p_run_id, v_day::text,
                                 pg_catalog.jsonb_build_object('days', 1, 'analytics_daily', v_rows),
                                 pg_catalog.jsonb_build_object('days', v_to - v_from + 1));
    commit;
    v_day := v_day + 1;
  end loop;
  perform private.job_finish(p_run_id, case when v_err is null then 'succeeded' else 'failed' end, v_err);
  commit;
  if v_err is not null then
    raise exception using errcode = 'P0001', message = format('analytics job run %s failed on %s', p_run_id, v_err);
  end if;
end;
$$;
comment on procedure public.job_analytics(bigint, integer, date, date, boolean) is
  'Job "analytics": refreshes public.analytics_daily for each UTC day from p_from to p_to (default: the last p_days days, today included), one '
  'transaction per day. Idempotent: re-running a day gives the same numbers; late data is picked up by re-running its day.';

create procedure public.job_metrics(inout p_run_id bigint default null, p_dry_run boolean default false)
  language plpgsql
as $$
declare
  v_rows jsonb;
  v_err text;
begin
  p_run_id := private.job_start('metrics', '{}'::jsonb, p_dry_run);
  commit;
  if not p_dry_run then
    begin
      v_rows := private.collect_system_metrics();
    exception when others then
      v_err := sqlerrm;
    end;
    if v_err is null then
      perform private.job_progress(p_run_id, 'collect', v_rows, v_rows);
    end if;
  end if;
  perform private.job_finish(p_run_id, case when v_err is null then 'succeeded' else 'failed' end, v_err);
  commit;
  if v_err is not null then
    raise exception using errcode = 'P0001', message = format('metrics job run %s failed: %s', p_run_id, v_err);
  end if;
end;
$$;
comment on procedure public.job_metrics(bigint, boolean) is
  'Job "metrics": samples database size, connections, per-table size and growth and per-tenant storage into public.system_metrics (private.collect_system_metrics).';

-- ---------------------------------------------------------------------------
-- Privileges: the jobs are for service_role (and the owner / pg_cron)
-- ---------------------------------------------------------------------------
revoke execute on function private.lifecycle_require_privileges(), private.lifecycle_cutoffs(timestamptz),
  private.conversation_is_held(uuid, uuid), private.jsonb_add_counts(jsonb, jsonb), private.job_lock_key(text),
  private.job_start(text, jsonb, boolean), private.job_finish(bigint, text, text), private.job_progress(bigint, text, jsonb, jsonb),
  private.batch_rows(jsonb), private.archivable_conversations(timestamptz), private.cold_conversations(timestamptz),
  private.archive_conversations_batch(timestamptz, integer), private.archive_integration_logs_batch(timestamptz, integer),
  private.archive_analytics_batch(timestamptz, integer), private.archive_preview(timestamptz),
  private.retention_batch(timestamptz, integer), private.retention_preview(timestamptz), private.collect_system_metrics()
  from public, anon, authenticated;
grant execute on function private.lifecycle_require_privileges(), private.lifecycle_cutoffs(timestamptz),
  private.conversation_is_held(uuid, uuid), private.jsonb_add_counts(jsonb, jsonb), private.job_lock_key(text),
  private.job_start(text, jsonb, boolean), private.job_finish(bigint, text, text), private.job_progress(bigint, text, jsonb, jsonb),
  private.batch_rows(jsonb), private.archivable_conversations(timestamptz), private.cold_conversations(timestamptz),
  private.archive_conversations_batch(timestamptz, integer), private.archive_integration_logs_batch(timestamptz, integer),
  private.archive_analytics_batch(timestamptz, integer), private.archive_preview(timestamptz),
  private.retention_batch(timestamptz, integer), private.retention_preview(timestamptz), private.collect_system_metrics(),
  private.purge_audit_logs(timestamptz, integer)
  to service_role;
revoke execute on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz),
  public.job_retention(bigint, integer, integer, boolean, timestamptz),
  public.job_analytics(bigint, integer, date, date, boolean), public.job_metrics(bigint, boolean)
  from public, anon, authenticated;
grant execute on procedure public.job_archive(bigint, integer, integer, boolean, timestamptz),
  public.job_retention(bigint, integer, integer, boolean, timestamptz),
  public.job_analytics(bigint, integer, date, date, boolean), public.job_metrics(bigint, boolean)
  to service_role;
