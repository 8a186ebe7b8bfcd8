-- Why: the plan's monthly message limit must hold under concurrency, and usage must be
-- tracked in the same transaction as each message (docs/design.md, business rules).
--
-- Sharded counters (issue 11): one row per company, month and shard; a session counts in
-- shard pg_backend_pid() % 16, or (read committed) in any other shard row no session holds
-- when that one is taken, so one tenant's concurrent writers do not queue on one row lock
-- held until commit. The month's usage is the SUM over its shards. The limit stays
-- exact and race-free through allowances: a shard takes a billable message only while its
-- message_count < allowance (checked under its own row lock), and allowances are granted,
-- in blocks, only under the lock of the month's shard-0 row, so the allowances granted for
-- the current limit never add up to more than the limit. When no block is left to grant,
-- the exact check near the limit locks every shard of the month, reclaims the unused
-- allowances and admits the message only if the exact total is below the limit. Every
-- grant UPDATES the shard-0 row, so a repeatable-read transaction that missed another's
-- grant fails with a serialization error instead of over-granting.
--
-- What counts (decision): message_count, the number compared with
-- subscription_plans.monthly_message_limit, counts BOT messages (AI answers, the work the
-- plan pays for). The limit is the company's override (companies.monthly_message_limit),
-- else its plan's; null = unlimited (read by record_message_usage). End-user, operator and system messages are always accepted - a customer's
-- message is never lost and humans can still answer when the AI allowance is used up - and
-- are counted in total_message_count for reporting.
--
-- Which month (decision): the server's. A message is counted in the UTC month of the
-- transaction that writes it (now()), never in the month of messages.created_at: that
-- column is the time the sender reports (the backend may fill it from the channel) and a
-- caller-chosen date two months back or a century ahead would land in a bucket whose
-- allowance is untouched. record_message_usage therefore takes no time argument.

{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
create table public.company_message_usage (
  company_id uuid not null,
  month date not null,
  shard smallint not null default 0,
  message_count bigint not null default 0,
  total_message_count bigint not null default 0,
  allowance bigint not null default 0,
  allowance_limit bigint,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint company_message_usage_pkey primary key (company_id, month, shard),
  constraint company_message_usage_shard_check check (shard between 0 and 15),
  constraint company_message_usage_allowance_check check (allowance >= 0),
  constraint company_message_usage_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint company_message_usage_month_first_day_check check (month = date_trunc('month', month)::date),
  constraint company_message_usage_message_count_check check (message_count >= 0),
  constraint company_message_usage_total_message_count_check check (total_message_count >= message_count)
);

comment on table public.company_message_usage is
  'Messages per company per calendar month (UTC) and shard, maintained in the message''s own transaction; the month''s usage is the sum over its shards. The sum of message_count (bot answers) is limited by the company''s effective monthly message limit (override or plan).'{{ doctor_notes('public.company_message_usage') }};
comment on column public.company_message_usage.company_id is 'Company (tenant key).';
comment on column public.company_message_usage.month is 'First day of the month (UTC, server clock: the writing transaction''s now()) the messages were counted in; never taken from messages.created_at.';
comment on column public.company_message_usage.shard is 'Counter shard 0-15 (created by the writing session as its pg_backend_pid() % 16; under read committed a message counts in any row of the month no other session holds, this session''s first): concurrent writers of one company count in different rows. Shard 0 also serialises the grants of allowances.';
comment on column public.company_message_usage.message_count is 'Billable messages (bot messages) of the month counted in this shard; their sum over the shards never exceeds the effective monthly limit (companies.monthly_message_limit, else the plan''s).';
comment on column public.company_message_usage.total_message_count is 'All messages of the month (every sender type) counted in this shard, for reporting; not limited.';
comment on column public.company_message_usage.allowance is 'Billable messages this shard may count without the month''s shard-0 lock (message_count < allowance); granted in blocks under that lock, the allowances for the current limit summing to at most the limit.';
comment on column public.company_message_usage.allowance_limit is 'The monthly limit the allowance was granted for; a different current limit (plan change, override) sends the next billable message to the exact check.';
comment on column public.company_message_usage.created_at is 'When the first message of the month was counted.';
comment on column public.company_message_usage.updated_at is 'When the latest message of the month was counted.';

create function private.record_message_usage(p_company_id uuid, p_billable bigint, p_total bigint)
returns date
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  -- the server clock (transaction time), never a time the caller chose
  v_month date := pg_catalog.date_trunc('month', pg_catalog.now() at time zone 'UTC')::date;
  v_shard smallint := (pg_catalog.pg_backend_pid() % 16)::smallint;
  v_limit bigint;
  v_plan text;
  v_count bigint;
  v_own public.company_message_usage;
  v_others bigint;
  v_grant bigint;
  v_block bigint;
  -- Under read committed a message may count in any shard row of the month that no other
  -- session holds (skip locked), this session's own first: two sessions whose pids share a
  -- shard then do not queue on its row lock, held until commit (issue 11). Under
  -- repeatable read only the own shard: another session's shard row is updated all the
  -- time, and updating it would fail with a serialization error.
  v_any_shard boolean := pg_catalog.current_setting('transaction_isolation') = 'read committed';{% if profile == 'citus' %}
  v_pick smallint;
  v_now timestamptz := pg_catalog.now();{% endif %}
begin
  if p_total < 1 then
    return v_month;
  end if;
  if p_billable > 0 then
    -- the effective monthly limit: the company's override, else its plan's (null =
    -- unlimited); read here, not through a SQL function with a SET clause, which runs
    -- through the function manager and is planned again on every call (issue 11)
    select coalesce(c.monthly_message_limit, p.monthly_message_limit) into v_limit
      from public.companies c
      join public.subscription_plans p on p.code = c.subscription_plan
     where c.id = p_company_id;
  end if;

  if p_billable = 0 or v_limit is null then
    -- nothing to check (messages that are not billable need no limit): count in a free
    -- shard row of the month (see v_any_shard). The rows exist after the first messages of
    -- the month, so try the UPDATE first; the upsert into this session's shard (which also
    -- runs the row's insert triggers, and waits for its row) only when none is free.{% if profile == 'citus' %}
    -- Citus: the free row is picked first, then updated by its key: a statement routes to
    -- the company's shard (local to this shard trigger) only with company_id = in its own
    -- WHERE, and an upsert's DO UPDATE takes no stable function (now() as a value).
    select f.shard into v_pick from public.company_message_usage f
     where f.company_id = p_company_id and f.month = v_month and (v_any_shard or f.shard = v_shard)
     order by f.shard <> v_shard, f.shard
     limit 1
       for no key update of f skip locked;{% endif %}
    update public.company_message_usage u
       set message_count = u.message_count + p_billable,
           total_message_count = u.total_message_count + p_total,
           updated_at = pg_catalog.now(){% if profile == 'citus' %}
     where u.company_id = p_company_id and u.month = v_month and u.shard = v_pick;{% else %}
     where (u.company_id, u.month, u.shard) = (
             select f.company_id, f.month, f.shard from public.company_message_usage f
              where f.company_id = p_company_id and f.month = v_month and (v_any_shard or f.shard = v_shard)
              order by f.shard <> v_shard, f.shard
              limit 1
                for no key update of f skip locked);{% endif %}
    if not found then
      insert into public.company_message_usage as u (company_id, month, shard, message_count, total_message_count)
      values (p_company_id, v_month, v_shard, p_billable, p_total)
      on conflict (company_id, month, shard) do update
         set message_count = u.message_count + excluded.message_count,
             total_message_count = u.total_message_count + excluded.total_message_count,
             updated_at = {{ 'v_now' if profile == 'citus' else 'pg_catalog.now()' }};
    end if;
    return v_month;
  end if;

  if v_limit >= p_billable then
    -- within the allowance of this shard (all of a statement's billable messages or none) (its row lock serialises its writers). In a
    -- block of its own: an UPDATE that waited for another writer of the shard keeps the
    -- row locked even when the row no longer qualifies; rolling the block back releases
    -- that lock, so this session waits for shard 0 below holding no usage row.
    -- Any shard row with allowance left counts it (see v_any_shard): its allowance was
    -- granted under the shard-0 lock whoever uses it, and its row lock is held here.
    begin{% if profile == 'citus' %}
      select f.shard into v_pick from public.company_message_usage f
       where f.company_id = p_company_id and f.month = v_month and (v_any_shard or f.shard = v_shard)
         and f.allowance_limit = v_limit and f.message_count + p_billable <= f.allowance
       order by f.shard <> v_shard, f.shard
       limit 1
         for no key update of f skip locked;{% endif %}
      update public.company_message_usage u
         set message_count = u.message_count + p_billable, total_message_count = u.total_message_count + p_total,
             updated_at = pg_catalog.now(){% if profile == 'citus' %}
       where u.company_id = p_company_id and u.month = v_month and u.shard = v_pick{% else %}
       where (u.company_id, u.month, u.shard) = (
               select f.company_id, f.month, f.shard from public.company_message_usage f
                where f.company_id = p_company_id and f.month = v_month and (v_any_shard or f.shard = v_shard)
                  and f.allowance_limit = v_limit and f.message_count + p_billable <= f.allowance
                order by f.shard <> v_shard, f.shard
                limit 1
                  for no key update of f skip locked){% endif %}
         and u.allowance_limit = v_limit and u.message_count + p_billable <= u.allowance
      returning u.message_count into strict v_count;
      return v_month;
    exception when no_data_found then
      v_count := null;
    end;

    -- grant: first the month's shard-0 row, which serialises grants (each statement below
    -- sees every grant committed before this one got that lock), then this shard's row (its
    -- other writers finish first). A session holds no usage row while it waits for shard 0,
    -- so single-message transactions never deadlock with the exact check below; a
    -- transaction writing many billable messages may (40P01, retry it).
    -- (the rows are created one at a time, shard 0 first: one statement inserting both
    -- would take them in no fixed order)
    insert into public.company_message_usage (company_id, month, shard) values (p_company_id, v_month, 0)
    on conflict (company_id, month, shard) do nothing;
    insert into public.company_message_usage (company_id, month, shard) values (p_company_id, v_month, v_shard)
    on conflict (company_id, month, shard) do nothing;
    update public.company_message_usage u set updated_at = pg_catalog.now()
     where u.company_id = p_company_id and u.month = v_month and u.shard = 0;
    select * into strict v_own from public.company_message_usage u
     where u.company_id = p_company_id and u.month = v_month and u.shard = v_shard
       for update;
    -- what the other shards may count: their allowance for this limit, else what they have
    select coalesce(sum(case when u.allowance_limit = v_limit then greatest(u.allowance, u.message_count)
                             else u.message_count end), 0)::bigint into v_others
      from public.company_message_usage u
     where u.company_id = p_company_id and u.month = v_month and u.shard <> v_shard;
    -- a block (at least the statement's billable messages), never beyond the limit
    v_block := greatest(least(greatest(v_limit / 64, 1), 1000), p_billable);
    v_grant := least(v_block, v_limit - v_others - v_own.message_count);
    if v_grant < p_billable then
      -- the exact check near the limit: lock every shard (in-flight writers finish first),
      -- take back their unused allowances, admit only below the exact total
      perform {{ '1 ' if profile == 'citus' }}from public.company_message_usage u
        where u.company_id = p_company_id and u.month = v_month order by u.shard for update;
      select coalesce(sum(u.message_count), 0)::bigint into v_count from public.company_message_usage u
       where u.company_id = p_company_id and u.month = v_month;
      if v_count + p_billable <= v_limit then
        update public.company_message_usage u set allowance = u.message_count, allowance_limit = v_limit
         where u.company_id = p_company_id and u.month = v_month and u.shard <> v_shard;
        v_grant := least(v_block, v_limit - v_count);
      end if;
    end if;
    if v_grant >= p_billable then
      update public.company_message_usage u
         set message_count = u.message_count + p_billable, total_message_count = u.total_message_count + p_total,
             allowance = v_own.message_count + v_grant, allowance_limit = v_limit,
             updated_at = pg_catalog.now()
       where u.company_id = p_company_id and u.month = v_month and u.shard = v_shard;
      return v_month;
    end if;
  end if;
  v_count := coalesce(v_count, 0);
  select c.subscription_plan into v_plan from public.companies c where c.id = p_company_id;
  raise exception using errcode = 'NA001',
    message = format('monthly message limit reached for plan %s: %s of %s (%s)%s', v_plan, v_count, v_limit,
                     pg_catalog.to_char(v_month, 'YYYY-MM'),
                     case when p_billable > 1 then format(', a statement of %s bot messages does not fit', p_billable) else '' end),
    hint = 'Upgrade the subscription plan, or wait for the next month (the allowance resets on the 1st, UTC). End-user and operator messages are still accepted.';
end
$$;
comment on function private.record_message_usage(uuid, bigint, bigint) is
  'Counts the messages one statement stored for a company (p_billable bot messages of p_total) in company_message_usage (a free shard, this session''s first) for the current UTC month of the server clock (now(), never the messages'' created_at); billable messages beyond the effective monthly message limit raise NA001 for the whole statement (all of them count or none). Returns the month counted in (a value, so that callers assign it: a PERFORM runs a query). Race-free: allowances granted in blocks under the month''s shard-0 lock, exact check (every shard locked) near the limit. '
  'doctor: allow setting.read transaction_isolation it only picks which shard row counts the message (any free one under read committed, the own one otherwise); every shard keeps the limit exact.';
revoke execute on function private.record_message_usage(uuid, bigint, bigint) from public, anon, authenticated;

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.company_message_usage') }}
