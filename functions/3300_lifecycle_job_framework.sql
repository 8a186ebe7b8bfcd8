-- Why: what every lifecycle job shares (DESIGN.md "Data lifecycle"): the privilege check,
-- the lifecycle clock (callers cannot move time forward), per-plan cutoffs, legal-hold
-- lookup, the job advisory-lock key and the run ledger (private.job_runs: start,
-- progress per committed batch, finish). The jobs themselves are in 3310 (archive),
-- 3320 (retention), 3330 (analytics) and 3340 (metrics). pg_cron runs them where it
-- exists, `neurant-db jobs run NAME` elsewhere.

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
  -- doctor: allow setting.read role the SET ROLE in effect (only roles the session is a member of), trusted only together with a superuser session_user
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

-- Privileges: the jobs are for service_role (and the owner / pg_cron).
revoke execute on function private.lifecycle_require_privileges(),
  private.lifecycle_cutoffs(timestamptz),
  private.conversation_is_held(uuid, uuid),
  private.jsonb_add_counts(jsonb, jsonb),
  private.job_lock_key(text),
  private.job_start(text, jsonb, boolean),
  private.job_finish(bigint, text, text),
  private.job_progress(bigint, text, jsonb, jsonb),
  private.batch_rows(jsonb)
  from public, anon, authenticated;
grant execute on function private.lifecycle_require_privileges(),
  private.lifecycle_cutoffs(timestamptz),
  private.conversation_is_held(uuid, uuid),
  private.jsonb_add_counts(jsonb, jsonb),
  private.job_lock_key(text),
  private.job_start(text, jsonb, boolean),
  private.job_finish(bigint, text, text),
  private.job_progress(bigint, text, jsonb, jsonb),
  private.batch_rows(jsonb)
  to service_role;
