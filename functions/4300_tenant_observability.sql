-- Why: per-tenant observability (issue 23), domain 3 (data lifecycle), object
-- private.collect_system_metrics(): supersedes the function of functions/3340_metrics_jobs.sql
-- (create or replace of the whole function; the procedure public.job_metrics is unchanged).
-- Adds to every sample: the bytes each tenant stores in each tenant table
-- (tenant.row_bytes), its share of the tables' on-disk size (tenant.total_bytes) and its
-- growth since the previous sample (tenant.growth_bytes); replication lag per standby
-- (replication.lag_bytes, replication.replay_lag_seconds) where one streams from this server,
-- and the WAL archive's age (wal.archive_age_seconds, wal.archive_failed_count) where one is
-- archived. docs/operations.md, "Per-tenant observability: neurant-db top".

create or replace function private.collect_system_metrics() returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  v_at timestamptz := pg_catalog.clock_timestamp();
  n bigint;
  total bigint := 0;
  v_table record;
  v_sizes jsonb;
begin
  perform private.lifecycle_require_privileges();
  -- the tenant tables (every table with a company_id the caller may read) and their on-disk
  -- size (heap, TOAST, indexes, free space), taken first: on profile citus the size function
  -- refuses to run after a multi-shard modification (the inserts below) in the transaction
  select pg_catalog.jsonb_object_agg(t.rel, {{ 'pg_catalog.citus_total_relation_size' if profile == 'citus' else 'pg_catalog.pg_total_relation_size' }}(t.oid))
    into v_sizes
    from (select c.oid, pg_catalog.format('%I.%I', ns.nspname, c.relname) as rel
            from pg_catalog.pg_class c
            join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
            join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = 'company_id' and not a.attisdropped
           where c.relkind in ('r', 'p') and not c.relispartition and ns.nspname in ('public', 'private', 'archive')
             and pg_catalog.has_table_privilege(c.oid, 'select')) t;
  insert into public.system_metrics (metric_name, value, labels, recorded_at)
  select 'db.size_bytes', pg_catalog.pg_database_size(pg_catalog.current_database()),
         pg_catalog.jsonb_build_object('database', pg_catalog.current_database()), v_at
  union all
  select 'db.connections', count(*), pg_catalog.jsonb_build_object('state', coalesce(a.state, 'unknown')), v_at
    from pg_catalog.pg_stat_activity a
   where a.datname = pg_catalog.current_database() and a.backend_type = 'client backend'
   group by a.state
  union all
  -- doctor: allow setting.read max_connections a server setting (postmaster), reported as a metric only
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
  total := n;
  -- a statement of its own (on profile citus a UNION ALL of these catalog views with the
  -- distributed reads above cannot be pushed down)
  insert into public.system_metrics (metric_name, value, labels, recorded_at)
  -- replication: one row per standby streaming from this server (null lags: caught up or not readable)
  select m.metric_name, m.value, pg_catalog.jsonb_build_object('standby', coalesce(r.application_name, ''),
                                                               'client_addr', coalesce(r.client_addr::text, 'local')), v_at
    from pg_catalog.pg_stat_replication r
   cross join lateral (values
     ('replication.lag_bytes',
      case when not pg_catalog.pg_is_in_recovery() and r.replay_lsn is not null
           then pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn)::double precision end),
     ('replication.replay_lag_seconds', extract(epoch from coalesce(r.replay_lag, interval '0'))::double precision)) m(metric_name, value)
   where m.value is not null and r.state is not null
  union all
  -- WAL archive: age of the newest archived segment and failures, where anything was ever archived
  select m.metric_name, m.value, '{}'::jsonb, v_at
    from pg_catalog.pg_stat_archiver a
   cross join lateral (values
     ('wal.archive_age_seconds', extract(epoch from (v_at - a.last_archived_time))::double precision),
     ('wal.archive_failed_count', a.failed_count::double precision)) m(metric_name, value)
   where a.last_archived_time is not null or a.failed_count > 0;
  get diagnostics n = row_count;
  total := total + n;
  -- per tenant, per tenant table: the bytes of its rows (pg_column_size of the whole row: the
  -- stored, possibly compressed, datums). One scan of each table, like the row counts above.
  for v_table in
    select k.rel from pg_catalog.jsonb_object_keys(coalesce(v_sizes, '{}'::jsonb)) k(rel) order by 1
  loop
    execute pg_catalog.format(
      'insert into public.system_metrics (metric_name, value, labels, recorded_at) '
      'select ''tenant.row_bytes'', pg_catalog.sum(pg_catalog.pg_column_size(t.*))::double precision, '
      'pg_catalog.jsonb_build_object(''company_id'', t.company_id, ''table'', %L), $1 '
      'from %s t where t.company_id is not null group by t.company_id', v_table.rel, v_table.rel) using v_at;
    get diagnostics n = row_count;
    total := total + n;
  end loop;
  -- per tenant: its share of each table's on-disk size (heap, TOAST, indexes, free space) in
  -- proportion to its row bytes, summed over the tables; and its growth since the previous
  -- sample (0 for a tenant that sample did not have). No correlated subquery: profile citus
  -- cannot push one down in an insert into a reference table.
  with t as (
    select x.company_id, coalesce(sum(x.share), 0)::double precision as bytes
      from (select s.labels->>'company_id' as company_id,
                   s.value / nullif(sum(s.value) over (partition by s.labels->>'table'), 0)
                   * (v_sizes->>(s.labels->>'table'))::double precision as share
              from public.system_metrics s
             where s.metric_name = 'tenant.row_bytes' and s.recorded_at = v_at) x
     group by x.company_id
  ), prev as (
    select p.labels->>'company_id' as company_id, p.value
      from public.system_metrics p
     where p.metric_name = 'tenant.total_bytes'
       and p.recorded_at = (select max(q.recorded_at) from public.system_metrics q
                             where q.metric_name = 'tenant.total_bytes' and q.recorded_at < v_at)
  )
  insert into public.system_metrics (metric_name, value, labels, recorded_at)
  select 'tenant.total_bytes', t.bytes, pg_catalog.jsonb_build_object('company_id', t.company_id), v_at
    from t
  union all
  select 'tenant.growth_bytes', t.bytes - coalesce(prev.value, t.bytes),
         pg_catalog.jsonb_build_object('company_id', t.company_id), v_at
    from t left join prev on prev.company_id = t.company_id;
  get diagnostics n = row_count;
  total := total + n;
  return pg_catalog.jsonb_build_object('public.system_metrics', total);
end;
$$;
comment on function private.collect_system_metrics() is
  'Samples platform health into public.system_metrics: database size, connections by state, per-table size/row estimate/growth since the previous sample, '
  'per-tenant document storage, rows and message bytes, per tenant and tenant table the bytes of its rows (tenant.row_bytes), per tenant its share '
  'of the tables'' on-disk size (tenant.total_bytes) and growth since its previous sample (tenant.growth_bytes), replication lag per standby and '
  'the WAL archive''s age (a full scan of every tenant table: run it daily, off-peak; docs/operations.md).';
