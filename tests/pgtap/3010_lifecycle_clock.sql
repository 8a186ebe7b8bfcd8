-- The lifecycle jobs take an "as of" time to replay a day; it may only look back.
-- A future as-of must never make recent data old enough to delete.
-- rule: server-time (docs/rules.md)
begin;
select plan(7);

create temp table clock_before as
  select (select count(*) from public.audit_logs) as audit_rows,
         (select count(*) from public.conversations) as live_conversations,
         (select count(*) from archive.conversations_archived) as archived_conversations,
         (select count(*) from public.system_metrics where recorded_at > now() - interval '400 days') as fresh_metrics;
grant select on clock_before to service_role;

select tests.act_as_service();
select is(private.purge_audit_logs('infinity', 1000000), 0::bigint,
  'the audit purge cannot be pointed at a future date to delete recent audit rows');
select ok(private.retention_batch('infinity', 1000) is not null,
  'a retention batch asked for the year infinity runs');
select tests.act_as_superuser();
select is((select count(*) from public.audit_logs), (select audit_rows from clock_before),
  'audit rows survive a purge asked for the year infinity');
select is((select count(*) from public.conversations) + (select count(*) from archive.conversations_archived),
          (select live_conversations + archived_conversations from clock_before),
  'retention asked for the year infinity deletes no conversation younger than its retention period');
select is((select count(*) from public.system_metrics where recorded_at > now() - interval '400 days'),
          (select fresh_metrics from clock_before),
  'retention asked for the year infinity by service_role deletes no system_metrics sample younger than 400 days');

select is(private.lifecycle_clock('2001-01-01'), '2001-01-01'::timestamptz,
  'a past as-of is honoured for anyone (replaying a day)');
select ok(private.lifecycle_clock('infinity') = 'infinity',
  'a superuser session may look forward (tests, DBA replays)');

select * from finish();
rollback;
