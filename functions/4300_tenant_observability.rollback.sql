-- Why: undoes 4300_tenant_observability.sql: restores private.collect_system_metrics() as
-- functions/3340_metrics_jobs.sql defines it.

create or replace function private.collect_system_metrics() returns jsonb
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
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
  return pg_catalog.jsonb_build_object('public.system_metrics', n);
end;
$$;
comment on function private.collect_system_metrics() is
  'Samples platform health into public.system_metrics: database size, connections by state, per-table size/row estimate/growth since the previous sample, '
  'per-tenant document storage, rows and message bytes (a full scan of the big tables: run it daily, off-peak).';
