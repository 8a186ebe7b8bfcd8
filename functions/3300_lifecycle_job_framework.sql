-- Why: what every lifecycle job shares (docs/design.md "Data lifecycle"): the privilege check,
-- the lifecycle clock (callers cannot move time forward), per-plan cutoffs, legal-hold
-- lookup, the job lock (one running run per lock group) and the run ledger (private.job_runs: start,
-- progress per committed batch, finish). The jobs themselves are in 3310 (archive),
-- 3320 (retention), 3330 (analytics) and 3340 (metrics). pg_cron runs them where it
-- exists, `neurant-db jobs run NAME` elsewhere.

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

create function private.lifecycle_require_privileges() returns void
  language plpgsql
  stable
  set search_path = pg_catalog, pg_temp
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

create function private.job_require_trusted_path(p_schemas name[]) returns void
  language plpgsql
  stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_first name;
begin
  -- p_schemas: pg_catalog.current_schemas(true) as the job procedure sees it (procedures
  -- COMMIT, so they cannot SET search_path: they run on the caller's). Their types and
  -- functions are qualified; their operators (=, <, +) are exact matches in pg_catalog,
  -- which win over any same-signature operator later on the path, not over one earlier.
  select s into v_first from pg_catalog.unnest(p_schemas) with ordinality u(s, i)
   where s::text not like 'pg\_temp\_%' order by i limit 1;
  if v_first is distinct from 'pg_catalog' then
    raise exception using errcode = '42501',
      message = pg_catalog.format('lifecycle jobs refuse a search_path that puts %s before pg_catalog', v_first),
      hint = 'Run the job on a session with the default search_path (or reset search_path first).';
  end if;
end;
$$;
comment on function private.job_require_trusted_path(name[]) is
  'Raises 42501 unless pg_catalog comes first (temp schema aside) on the search_path a job procedure runs with: a session another client set to "public, pg_catalog" could otherwise shadow an operator.';

create function private.lifecycle_clock(p_as_of timestamptz) returns timestamptz
  language sql
  stable
  set search_path = pg_catalog, pg_temp
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
  language plpgsql
  stable
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  -- PL/pgSQL, not SQL: Citus cannot plan a SQL function with parameters over a distributed
  -- table (companies), and the clock is read once, not three times per company.
  v_clock timestamptz := private.lifecycle_clock(p_as_of);
begin
  return query
  select co.id,
         v_clock - pg_catalog.make_interval(days => p.archive_after_days),
         v_clock - pg_catalog.make_interval(days => p.cold_after_days),
         v_clock - pg_catalog.make_interval(days => p.delete_after_days),
         exists (select 1 from public.legal_holds h
                  where h.company_id = co.id and h.released_at is null and h.conversation_id is null)
    from public.companies co
    join public.subscription_plans p on p.code = co.subscription_plan
   order by co.id;
end;
$$;
comment on function private.lifecycle_cutoffs(timestamptz) is
  'Per company, as of private.lifecycle_clock(p_as_of): the times before which data is archived, exported to cold storage and deleted (from its plan''s retention days), and whether a company-wide legal hold is active.';

create function private.jsonb_add_counts(p_a jsonb, p_b jsonb) returns jsonb
  language sql
  immutable
  parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce(pg_catalog.jsonb_object_agg(k, v), '{}'::pg_catalog.jsonb)
    from (select e.key as k, pg_catalog.sum(e.value::numeric)::bigint as v
            from (select * from pg_catalog.jsonb_each_text(coalesce(p_a, '{}'::pg_catalog.jsonb))
                  union all
                  select * from pg_catalog.jsonb_each_text(coalesce(p_b, '{}'::pg_catalog.jsonb))) e
           group by e.key) s
$$;
comment on function private.jsonb_add_counts(jsonb, jsonb) is
  'Adds two {"table": count} objects key by key (job counters).';

create function private.job_lock_key(p_job text) returns text
  language sql
  immutable
  parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  -- the lock group of a job: at most one run of a group is running (job_runs_one_running_per_lock_key)
  select case when p_job in ('archive', 'cold-export', 'retention') then 'lifecycle'
              when p_job in ('analytics', 'metrics') then p_job
              else 'other' end
$$;
comment on function private.job_lock_key(text) is
  'Lock group of a job: archive, cold-export and retention share "lifecycle" so they never overlap; analytics and metrics have their own. '
  'At most one run per group is running (unique index job_runs_one_running_per_lock_key); no advisory lock, which any role could take.';

-- The job lock is the running row itself, not an advisory lock: pg_advisory_lock takes any
-- key for any role, so an end user could hold a job's key and stop archival (issue 9).
-- Nobody but service_role and the owner reaches private.job_runs, and a run whose session
-- died stops counting (job_start marks it interrupted).
create unique index job_runs_one_running_per_lock_key on private.job_runs (private.job_lock_key(job))
  where status = 'running';
comment on index private.job_runs_one_running_per_lock_key is
  'The job lock: at most one running run per lock group (private.job_lock_key); a concurrent job_start waits for the other''s commit, then fails 55P03.';

create function private.job_session_alive(p_pid integer, p_since timestamptz) returns boolean
  language sql
  stable
  security definer
  set search_path = pg_catalog, pg_temp
as $$
  -- Definer: pg_stat_activity shows backend_start of other roles' sessions only to their
  -- members and pg_read_all_stats. Without it (null) the pid alone counts: never a live
  -- run taken for dead.
  select exists (select 1 from pg_catalog.pg_stat_activity a
                  where a.pid = p_pid and (a.backend_start is null or a.backend_start <= p_since))
$$;
comment on function private.job_session_alive(integer, timestamptz) is
  'True while the session with pid p_pid that was connected at p_since still lives (a pid reused by a later session does not count): tells a running job from a killed one.';

create function private.job_start(p_job text, p_params jsonb, p_dry_run boolean) returns bigint
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_key text := private.job_lock_key(p_job);
  v_holder text;
  v_id bigint;{% if profile == 'citus' %}
  -- Citus refuses a volatile function in an UPDATE of a distributed or reference table:
  -- the time is taken first and sent as a value.
  v_now timestamptz := pg_catalog.clock_timestamp();{% endif %}
begin
  perform private.lifecycle_require_privileges();
  -- A run of the group still marked running is live while its session is: the same pid,
  -- connected before the run started (a reused pid connected later). This session's own
  -- leftover (a run that raised before job_finish) is not live: we are starting another.
  select r.job || ' run ' || r.id || ' (pid ' || r.backend_pid || ', started ' || r.started_at || ')'
    into v_holder
    from private.job_runs r
   where r.status = 'running' and private.job_lock_key(r.job) = v_key
     and r.backend_pid <> pg_catalog.pg_backend_pid()
     and private.job_session_alive(r.backend_pid, r.started_at)
   order by r.id desc limit 1;
  if v_holder is null then
    -- Nobody live holds the group: any run of it still marked running lost its session.
    update private.job_runs r
       set status = 'interrupted', finished_at = {{ 'v_now' if profile == 'citus' else 'pg_catalog.clock_timestamp()' }},
           error = coalesce(r.error, 'the session running the job ended before it finished')
     where r.status = 'running' and private.job_lock_key(r.job) = v_key;
    begin
      insert into private.job_runs (job, dry_run, params)
      values (p_job, coalesce(p_dry_run, false), coalesce(p_params, '{}'::jsonb))
      returning id into v_id;
      return v_id;
    exception when unique_violation then
      -- another job_start of the group committed first
      select r.job || ' run ' || r.id || ' (pid ' || r.backend_pid || ', started ' || r.started_at || ')'
        into v_holder
        from private.job_runs r
       where r.status = 'running' and private.job_lock_key(r.job) = v_key
       order by r.id desc limit 1;
    end;
  end if;
  raise exception using errcode = '55P03',
    message = format('job %s cannot start: %s is running', p_job, coalesce(v_holder, 'another session')),
    hint = 'Wait for it to finish; a killed run stops counting when its session ends.';
end;
$$;
comment on function private.job_start(text, jsonb, boolean) is
  'Starts a job run: refuses with 55P03 while a run of the same lock group is running in a live session (the running row is the lock: '
  'one per group, job_runs_one_running_per_lock_key), marks runs of the group whose session died as interrupted, inserts the private.job_runs row and returns its id.';

create function private.job_finish(p_run_id bigint, p_status text, p_error text default null) returns void
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $${% if profile == 'citus' %}
declare
  v_now timestamptz := pg_catalog.clock_timestamp(); -- a value: see job_start{% endif %}
begin
  update private.job_runs
     set status = p_status, finished_at = {{ 'v_now' if profile == 'citus' else 'pg_catalog.clock_timestamp()' }}, error = p_error
   where id = p_run_id;
end;
$$;
comment on function private.job_finish(bigint, text, text) is
  'Ends a job run (succeeded or failed with its error), which frees its lock group for the next run.';

create function private.job_progress(p_run_id bigint, p_step text, p_batch jsonb, p_total jsonb)
returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
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
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce(pg_catalog.sum(e.value::numeric), 0)::bigint from pg_catalog.jsonb_each_text(coalesce(p_batch, '{}'::pg_catalog.jsonb)) e
$$;
comment on function private.batch_rows(jsonb) is 'Total rows of a {"table": count} batch result.';

-- Privileges: the jobs are for service_role (and the owner / pg_cron).
revoke execute on function private.lifecycle_require_privileges(),
  private.job_require_trusted_path(name[]),
  private.lifecycle_cutoffs(timestamptz),
  private.jsonb_add_counts(jsonb, jsonb),
  private.job_lock_key(text),
  private.job_session_alive(integer, timestamptz),
  private.job_start(text, jsonb, boolean),
  private.job_finish(bigint, text, text),
  private.job_progress(bigint, text, jsonb, jsonb),
  private.batch_rows(jsonb)
  from public, anon, authenticated;
grant execute on function private.lifecycle_require_privileges(),
  private.job_require_trusted_path(name[]),
  private.lifecycle_cutoffs(timestamptz),
  private.jsonb_add_counts(jsonb, jsonb),
  private.job_lock_key(text),
  private.job_session_alive(integer, timestamptz),
  private.job_start(text, jsonb, boolean),
  private.job_finish(bigint, text, text),
  private.job_progress(bigint, text, jsonb, jsonb),
  private.batch_rows(jsonb)
  to service_role;
