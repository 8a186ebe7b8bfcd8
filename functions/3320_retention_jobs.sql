-- Why: compliance retention (docs/design.md: delete after the plan's delete_after_days, 7 years
-- by default, unless a legal hold applies), live or archived, in batches of one
-- transaction each; audit logs are never purged before 7 years whatever the plan says.
{% from 'functions/_lifecycle.sql' import not_held, conversation_tables -%}
{% set live = conversation_tables('public').split(' ') -%}
{% set archived = conversation_tables('archive').split(' ') -%}
{#- A conversation (live or archived) past retention that no active legal hold covers. -#}
{% macro expired_conversation(c) -%}
{{ c }}.company_id = k.company_id and {{ c }}.closed_at < k.delete_before and {{ not_held('k.company_id', c ~ '.id') }}
{%- endmacro %}

-- ---------------------------------------------------------------------------
-- Compliance retention: delete what is older than delete_after_days, wherever it is
-- ---------------------------------------------------------------------------

create function private.purge_audit_logs(p_as_of timestamptz, p_limit integer) returns bigint
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  n bigint;{% if profile == 'citus' %}
  v_token text;
  v_clock timestamptz := private.lifecycle_clock(p_as_of);{% endif %}
begin
  -- The purge hook of 0050_audit_trail: only the table owner (this function's owner) may
  -- delete, in the transaction whose id neurant.audit_purge holds. Ages are measured from lifecycle_clock():
  -- only a superuser session may move the clock forward. Never younger than 7 years (2555 days),
  -- whatever a plan says; a company-wide legal hold keeps the company's trail.
{%- if profile == 'citus' %}
  -- Citus: the clock is read here, on the coordinator, in the caller's session (v_clock): in
  -- the delete's subquery it would be evaluated on the workers, in the sessions Citus opens as
  -- this function's owner, a superuser that has not switched role there, which may look forward.
  -- Citus: the hook fires on the workers. The token is the distributed transaction's id
  -- (none before the transaction's first distributed statement), sent to them with SET
  -- LOCAL (a set_config is not propagated).
  v_token := {{ transaction_token() }};
  if v_token is null then
    -- Called first in its transaction (the retention job's own purge transactions): a read of
    -- the audit placements opens the distributed transaction, as this function's owner.
    perform 1 from public.audit_logs l limit 1;
    v_token := {{ transaction_token() }};
  end if;
  if v_token is null then
    raise exception using errcode = '55000',
      message = 'the audit purge needs a distributed transaction',
      hint = 'Run it from the retention job, or in a transaction block after a statement on a distributed table.';
  end if;
  execute 'set local citus.propagate_set_commands = ''local''';
  execute pg_catalog.format('set local neurant.audit_purge = %L', v_token);
{%- else %}
  perform pg_catalog.set_config('neurant.audit_purge', {{ transaction_token() }}, true);
{%- endif %}
  delete from public.audit_logs a
   where (a.company_id, a.id) in (
     select l.company_id, l.id
       from public.audit_logs l
       left join public.companies co on co.id = l.company_id
       left join public.subscription_plans p on p.code = co.subscription_plan
      where l.created_at < {{ 'v_clock' if profile == 'citus' else 'private.lifecycle_clock(p_as_of)' }} - pg_catalog.make_interval(days => greatest(coalesce(p.delete_after_days, 2555), 2555))
        and not exists (select 1 from public.legal_holds h
                         where h.company_id = l.company_id and h.released_at is null and h.conversation_id is null)
      limit p_limit);
  get diagnostics n = row_count;
{%- if profile == 'citus' %}
  execute 'set local neurant.audit_purge = ''''';
{%- else %}
  perform pg_catalog.set_config('neurant.audit_purge', '', true);
{%- endif %}
  return n;
end;
$$;
comment on function private.purge_audit_logs(timestamptz, integer) is
  'Retention: deletes up to p_limit audit rows older than max(plan delete_after_days, 2555 days) not under a company-wide legal hold, through the audit purge hook (runs as the table owner).';
revoke execute on function private.purge_audit_logs(timestamptz, integer) from public, anon, authenticated;

create function private.retention_batch(p_as_of timestamptz, p_limit integer) returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  k record;
  v_ids uuid[];
  v_bots uuid[];
  v_days date[];
  -- what is left of p_limit, per kind: live and archived conversations, live and archived
  -- integration logs, live and archived analytics days
  v_left integer[] := pg_catalog.array_fill(p_limit, array[6]);
  v_out jsonb := '{}'::jsonb;
  n bigint;
begin
  perform private.lifecycle_require_privileges();
  for k in select c.company_id, c.delete_before from private.lifecycle_cutoffs(p_as_of) c where not c.company_held loop
    -- live closed conversations past retention (the archive job never took them), and their
    -- rows, without waiting on a member's open transaction (those conversations wait)
    select coalesce(pg_catalog.array_agg(c.id), '{}') into v_ids
      from (select c.id from public.conversations c
             where {{ expired_conversation('c') }} and c.status = 'closed'
             limit v_left[1] for update of c skip locked) c;
    if pg_catalog.cardinality(v_ids) > 0 then
      v_ids := private.lock_conversation_rows(k.company_id, v_ids);
      v_left[1] := v_left[1] - pg_catalog.cardinality(v_ids);
{%- for table in live | reverse %}
      delete from {{ table }} r where r.company_id = k.company_id and r.conversation_id = any (v_ids);
      get diagnostics n = row_count;
      v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('{{ table }}', n));
{%- endfor %}
      delete from public.conversations c where c.company_id = k.company_id and c.id = any (v_ids);
      get diagnostics n = row_count;
      v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.conversations', n));
    end if;

    -- archived conversations past retention (the cold export did not take them)
    select coalesce(pg_catalog.array_agg(c.id), '{}') into v_ids
      from (select c.id from archive.conversations_archived c
             where {{ expired_conversation('c') }}
             limit v_left[2] for update of c skip locked) c;
    if pg_catalog.cardinality(v_ids) > 0 then
      v_left[2] := v_left[2] - pg_catalog.cardinality(v_ids);
{%- for table in archived | reverse %}
      delete from {{ table }} r where r.company_id = k.company_id and r.conversation_id = any (v_ids);
      get diagnostics n = row_count;
      v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('{{ table }}', n));
{%- endfor %}
      delete from archive.conversations_archived c where c.company_id = k.company_id and c.id = any (v_ids);
      get diagnostics n = row_count;
      v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('archive.conversations_archived', n));
    end if;

    -- integration logs and analytics, live and archived
{%- for table in ['public.integration_logs', 'archive.integration_logs_archived'] %}
    select coalesce(pg_catalog.array_agg(x.id), '{}') into v_ids
      from (select l.id from {{ table }} l where l.company_id = k.company_id and l.created_at < k.delete_before
             limit v_left[{{ loop.index + 2 }}] for update of l skip locked) x;
    delete from {{ table }} l where l.company_id = k.company_id and l.id = any (v_ids);
    get diagnostics n = row_count;
    v_left[{{ loop.index + 2 }}] := v_left[{{ loop.index + 2 }}] - n::integer;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('{{ table }}', n));
{%- endfor %}
{%- for table in ['public.analytics_daily', 'archive.analytics_archived'] %}
    select coalesce(pg_catalog.array_agg(x.chatbot_id), '{}'), coalesce(pg_catalog.array_agg(x.day), '{}') into v_bots, v_days
      from (select a.chatbot_id, a.day from {{ table }} a
             where a.company_id = k.company_id and a.day < (k.delete_before at time zone 'UTC')::pg_catalog.date
             limit v_left[{{ loop.index + 4 }}] for update of a skip locked) x;
    delete from {{ table }} a using unnest(v_bots, v_days) b(chatbot_id, day)
     where a.company_id = k.company_id and a.chatbot_id = b.chatbot_id and a.day = b.day;
    get diagnostics n = row_count;
    v_left[{{ loop.index + 4 }}] := v_left[{{ loop.index + 4 }}] - n::integer;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('{{ table }}', n));
{%- endfor %}
  end loop;
{% if profile == 'citus' %}
  -- Citus: purge_audit_logs runs as its owner. Run by another role (service_role), this batch
  -- wrote the companies' placements over that role's connections, and Citus refuses them, in
  -- the same transaction, to the owner's (25001: audit_logs is co-located with every table
  -- above): then job_retention purges in transactions of its own (docs/scale-out.md).
  if current_user = (select pg_catalog.pg_get_userbyid(f.proowner) from pg_catalog.pg_proc f
                      where f.oid = 'private.purge_audit_logs(timestamptz, integer)'::pg_catalog.regprocedure) then
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.audit_logs', private.purge_audit_logs(p_as_of, p_limit)));
  end if;
{%- else %}
  v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('public.audit_logs', private.purge_audit_logs(p_as_of, p_limit)));
{%- endif %}
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
  'live or archived, that no active legal hold covers, company by company; audit logs through private.purge_audit_logs(){{ " (profile citus: only when run as its owner; for any other role job_retention calls it in transactions of its own)" if profile == "citus" }}. Returns rows deleted per table.';

create function private.retention_preview(p_as_of timestamptz) returns jsonb
  language plpgsql
  stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  k record;
  v_out jsonb := '{}'::jsonb;
begin
  -- PL/pgSQL, company by company: the rules of retention_batch (Citus plans no SQL function
  -- with parameters over a distributed table)
  for k in select c.company_id, c.delete_before from private.lifecycle_cutoffs(p_as_of) c where not c.company_held loop
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object(
      'public.conversations', (select pg_catalog.count(*) from public.conversations c
                                where {{ expired_conversation('c') }} and c.status = 'closed'),
      'public.messages', (select pg_catalog.count(*) from public.messages m
                           where m.company_id = k.company_id
                             and m.conversation_id in (select c.id from public.conversations c
                                                        where {{ expired_conversation('c') }} and c.status = 'closed')),
      'archive.conversations_archived', (select pg_catalog.count(*) from archive.conversations_archived c
                                          where {{ expired_conversation('c') }}),
      'archive.messages_archived', (select pg_catalog.count(*) from archive.messages_archived m
                                     where m.company_id = k.company_id
                                       and m.conversation_id in (select c.id from archive.conversations_archived c
                                                                  where {{ expired_conversation('c') }})),
{%- for table in ['public.integration_logs', 'archive.integration_logs_archived'] %}
      '{{ table }}', (select pg_catalog.count(*) from {{ table }} l where l.company_id = k.company_id and l.created_at < k.delete_before),
{%- endfor %}
{%- for table in ['public.analytics_daily', 'archive.analytics_archived'] %}
      '{{ table }}', (select pg_catalog.count(*) from {{ table }} a
                       where a.company_id = k.company_id and a.day < (k.delete_before at time zone 'UTC')::pg_catalog.date){{ ',' if not loop.last }}
{%- endfor %}));
  end loop;
  return coalesce((select pg_catalog.jsonb_object_agg(e.key, e.value) from pg_catalog.jsonb_each(v_out) e where e.value::text <> '0'),
                  '{}'::jsonb);
end;
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
{%- if profile == 'citus' %}
  -- Citus: the audit purge in transactions of its own, after the company batches (it runs as
  -- its owner, they as the job's role: one transaction cannot hold both users' writes, 25001).
  commit;
  loop
    exit when v_err is not null or (p_max_batches is not null and v_batches >= p_max_batches);
    begin
      v_batch := pg_catalog.jsonb_build_object('public.audit_logs', private.purge_audit_logs(v_as_of, p_batch_size));
    exception when others then
      v_err := sqlerrm;
    end;
    exit when v_err is not null or private.batch_rows(v_batch) = 0;
    v_batches := v_batches + 1;
    perform private.job_progress(p_run_id, 'delete', v_batch, v_total);
    commit;
  end loop;
{%- endif %}
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
