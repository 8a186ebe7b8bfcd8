-- Why: compliance retention (docs/design.md: delete after the plan's delete_after_days, 7 years
-- by default, unless a legal hold applies), live or archived, in batches of one
-- transaction each; audit logs are never purged before 7 years whatever the plan says.

-- ---------------------------------------------------------------------------
-- Compliance retention: delete what is older than delete_after_days, wherever it is
-- ---------------------------------------------------------------------------

create function private.purge_audit_logs(p_as_of timestamptz, p_limit integer) returns bigint
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  n bigint;
begin
  -- The purge hook of 0050_audit_trail: only the table owner (this function's owner) may
  -- delete, in the transaction whose id neurant.audit_purge holds. Ages are measured from lifecycle_clock():
  -- only a superuser session may move the clock forward. Never younger than 7 years (2555 days),
  -- whatever a plan says; a company-wide legal hold keeps the company's trail.
  perform pg_catalog.set_config('neurant.audit_purge', pg_catalog.pg_current_xact_id()::text, true);
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
  set search_path = pg_catalog, pg_temp
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
  -- their rows, without waiting on a member's open transaction (those conversations wait)
  select l.o_companies, l.o_ids into v_companies, v_ids
    from private.lock_conversation_rows(v_companies, v_ids) l;
  if pg_catalog.cardinality(v_ids) > 0 then
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
  -- platform samples are kept 400 days (no tenant, no hold), aged by the lifecycle clock
  delete from public.system_metrics s using (
    select s.id from public.system_metrics s
     where s.recorded_at < private.lifecycle_clock(p_as_of) - interval '400 days' limit p_limit) b
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
  set search_path = pg_catalog, pg_temp
as $$
  with k as (select * from private.lifecycle_cutoffs(p_as_of) where not company_held),
  lc as (select c.company_id, c.id from k join public.conversations c
           on c.company_id = k.company_id and c.status = 'closed' and c.closed_at < k.delete_before
          where not private.conversation_is_held(c.company_id, c.id)),
  ac as (select c.company_id, c.id from k join archive.conversations_archived c
           on c.company_id = k.company_id and c.closed_at < k.delete_before
          where not private.conversation_is_held(c.company_id, c.id))
  select coalesce((select pg_catalog.jsonb_object_agg(t, n) from (values
    ('public.conversations', (select pg_catalog.count(*) from lc)),
    ('public.messages', (select pg_catalog.count(*) from public.messages m join lc on lc.company_id = m.company_id and lc.id = m.conversation_id)),
    ('archive.conversations_archived', (select pg_catalog.count(*) from ac)),
    ('archive.messages_archived', (select pg_catalog.count(*) from archive.messages_archived m join ac on ac.company_id = m.company_id and ac.id = m.conversation_id)),
    ('public.integration_logs', (select pg_catalog.count(*) from k join public.integration_logs l on l.company_id = k.company_id and l.created_at < k.delete_before)),
    ('archive.integration_logs_archived', (select pg_catalog.count(*) from k join archive.integration_logs_archived l on l.company_id = k.company_id and l.created_at < k.delete_before)),
    ('public.analytics_daily', (select pg_catalog.count(*) from k join public.analytics_daily a on a.company_id = k.company_id and a.day < (k.delete_before at time zone 'UTC')::pg_catalog.date)),
    ('archive.analytics_archived', (select pg_catalog.count(*) from k join archive.analytics_archived a on a.company_id = k.company_id and a.day < (k.delete_before at time zone 'UTC')::pg_catalog.date))
  ) v(t, n) where n > 0), '{}'::pg_catalog.jsonb)
$$;
comment on function private.retention_preview(timestamptz) is
  'What public.job_retention() would delete as of p_as_of (conversations and messages live/archived, logs, analytics; audit rows not counted): its dry run and progress total.';

-- ---------------------------------------------------------------------------
-- The job (CALL outside a transaction block: it commits per batch)
-- ---------------------------------------------------------------------------

create procedure public.job_retention(
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
  v_err pg_catalog.text;
  v_batches integer := 0;
begin
  perform private.job_require_trusted_path(pg_catalog.current_schemas(true));
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 100000 then
    raise exception using errcode = '22023', message = pg_catalog.format('p_batch_size must be 1..100000, not %s', p_batch_size);
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
  raise notice 'neurant.progress %', pg_catalog.jsonb_build_object('run_id', p_run_id, 'step', 'start', 'done', '{}'::pg_catalog.jsonb, 'total', v_total);
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
    raise exception using errcode = 'P0001', message = pg_catalog.format('retention job run %s failed: %s', p_run_id, v_err),
      hint = 'Batches committed before the error stay done; fix the cause and run the job again.';
  end if;
end;
$$;
comment on procedure public.job_retention(bigint, integer, integer, boolean, timestamptz) is
  'Job "retention": deletes, live or archived, every conversation (with its rows), integration log and daily analytics row older than its plan''s delete_after_days, '
  'and audit rows older than 7 years, unless a legal hold covers them (system_metrics samples: after 400 days); p_batch_size per transaction. Dead tuples remain until VACUUM '
  '(`neurant-db jobs run retention` vacuums afterwards) and in WAL/backups until they expire: see docs/lifecycle.md. doctor: allow function.search_path a procedure that commits cannot carry a SET clause: every name in it is qualified and it first calls private.job_require_trusted_path.';

-- Privileges: the jobs are for service_role (and the owner / pg_cron).
revoke execute on function private.retention_batch(timestamptz, integer),
  private.retention_preview(timestamptz),
  private.purge_audit_logs(timestamptz, integer)
  from public, anon, authenticated;
grant execute on function private.retention_batch(timestamptz, integer),
  private.retention_preview(timestamptz),
  private.purge_audit_logs(timestamptz, integer)
  to service_role;
revoke execute on procedure public.job_retention(bigint, integer, integer, boolean, timestamptz) from public, anon, authenticated;
grant execute on procedure public.job_retention(bigint, integer, integer, boolean, timestamptz) to service_role;
