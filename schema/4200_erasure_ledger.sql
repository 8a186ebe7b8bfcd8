-- Why: domain lifecycle (GDPR Art. 17, issue 24), object private.erasure_ledger, new table
-- (supersedes nothing). Every end-user erasure request lands here: who asked, when, the
-- company, a non-reversible reference to the end user (sha256 of company and end-user id,
-- never the id itself), what was redacted (counts per table) and which conversations a
-- legal hold deferred. public.erase_end_user and the hold-release trigger write it
-- (functions/4210_erase_end_user.sql).
--
-- A table added after release 0.1.0: its registry entry says `since = 4200`, so no released
-- migration renders it in its loops; this file calls the single-table macros itself and,
-- on profile citus, places the table (distributed by company_id, co-located with companies)
-- the way seeds/3990 places every other one.
{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
{% from 'policies/_rls.sql' import rls -%}
create table private.erasure_ledger (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  subject_ref text not null,
  reason text not null,
  requested_by text not null,
  requested_at timestamptz not null default now(),
  status text not null,
  erased jsonb not null default '{}'::jsonb,
  deferred_conversation_ids uuid[] not null default '{}'::uuid[],
  completed_at timestamptz,
  cold_files jsonb,
  constraint erasure_ledger_pkey primary key (company_id, id),
  constraint erasure_ledger_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint erasure_ledger_subject_ref_check check (subject_ref ~ '^[0-9a-f]{64}$'),
  constraint erasure_ledger_reason_length_check check (char_length(btrim(reason)) between 3 and 500),
  constraint erasure_ledger_requested_by_length_check check (char_length(requested_by) between 1 and 200),
  constraint erasure_ledger_status_check check (status in ('done', 'deferred')),
  constraint erasure_ledger_deferred_check
    check ((status = 'deferred') = (pg_catalog.cardinality(deferred_conversation_ids) > 0)),
  constraint erasure_ledger_completed_check check ((status = 'done') = (completed_at is not null)),
  constraint erasure_ledger_erased_object_check check (pg_catalog.jsonb_typeof(erased) = 'object')
);
comment on table private.erasure_ledger is
  'End-user erasure requests (GDPR Art. 17; tenant table): one row per call of public.erase_end_user. Holds no personal data: the end user is named only by subject_ref (sha256 of company and end-user id). '
  'Written by service_role through public.erase_end_user and by the hold-release trigger (private.erasure_on_hold_release); members have no access.'{{ doctor_notes('private.erasure_ledger') }};
comment on column private.erasure_ledger.company_id is 'Company whose end user asked (tenant key).';
comment on column private.erasure_ledger.id is 'Request id (the receipt''s ledger_id).';
comment on column private.erasure_ledger.subject_ref is
  'private.erasure_subject_ref(company_id, end_user_id): hex sha256 of "<company_id>:<end_user_id>". Not reversible; whoever knows the id can recompute it to find the request.';
comment on column private.erasure_ledger.reason is 'Why the erasure was requested (ticket, legal basis), 3-500 characters; must not contain personal data.';
comment on column private.erasure_ledger.requested_by is 'Who called public.erase_end_user: the session role, and the JWT subject when there is one.';
comment on column private.erasure_ledger.requested_at is 'When the request was recorded (and its undeferred part carried out).';
comment on column private.erasure_ledger.status is
  'done: every conversation of the end user is redacted; deferred: deferred_conversation_ids are under a legal hold and are redacted when it is released.';
comment on column private.erasure_ledger.erased is
  'Rows redacted per table ({"public.messages": n, ...}), summed over the request and its deferred completions.';
comment on column private.erasure_ledger.deferred_conversation_ids is
  'Conversations of the end user still under a legal hold (random ids, no personal data); emptied as their holds are released.';
comment on column private.erasure_ledger.completed_at is 'When the last deferred conversation was redacted (the request time when nothing was deferred).';
comment on column private.erasure_ledger.cold_files is
  'What neurant-db erase did to cold-storage exports: {"exports": n, "rows": {table: n}, "deferred": bool}; null until it ran.';

create index erasure_ledger_deferred_idx on private.erasure_ledger (company_id) where status = 'deferred';
comment on index private.erasure_ledger_deferred_idx is 'The open (deferred) requests of a company, read when one of its holds is released.';

{{ tenant_guard('private.erasure_ledger') }}

{{ rls('private.erasure_ledger') }}
create policy deny_members on private.erasure_ledger
  as restrictive for all to anon, authenticated
  using (false) with check (false);
comment on policy deny_members on private.erasure_ledger is
  'Members never reach the ledger: service_role (BYPASSRLS) writes it and hands the tenant a receipt.';
{%- if profile == 'citus' %}

-- Profile citus: distributed by company_id, co-located with companies (an empty table: no
-- rows to copy, and its one foreign key goes to the co-located companies), then its row of
-- the plan after every released table. The row comes second: private.citus_layout is a
-- reference table, and its regclass names a table every node must already know. Then
-- private.citus_distribute() checks it is placed as planned (it skips it; 55000 otherwise).
-- On a server without Citus only the row is written, as seeds/3990 does there.
{%- set entry = tables['private.erasure_ledger'] %}
do $$
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null
     and exists (select 1 from pg_catalog.pg_proc p
                  where p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
                    and p.proname = 'create_distributed_table') then
    -- its foreign key reaches reference tables through companies: one connection per node
    perform pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    execute 'select pg_catalog.create_distributed_table($1, $2, colocate_with => $3)'
      using 'private.erasure_ledger', '{{ entry.distribution_column }}', 'public.companies';
  end if;
end
$$;
insert into private.citus_layout (position, relation, placement, distribution_column, colocate_with)
values ({{ entry.position }}, 'private.erasure_ledger'::regclass, '{{ entry.citus }}', '{{ entry.distribution_column }}', 'public.companies'::regclass);
select private.citus_distribute();
{%- endif %}
