-- Why: the plan's monthly message limit must hold under concurrency, and usage must be
-- tracked in the same transaction as each message (DESIGN: business rules). One counter
-- row per company and month, bumped by an upsert whose conflict branch only increments
-- while below the limit: the row lock taken by ON CONFLICT DO UPDATE serialises writers,
-- so two concurrent messages can never both take the last unit.
--
-- What counts (decision): message_count, the number compared with
-- subscription_plans.monthly_message_limit, counts BOT messages (AI answers, the work the
-- plan pays for). The limit is private.effective_monthly_message_limit() (the company's
-- override, else its plan's; null = unlimited). End-user, operator and system messages are always accepted - a customer's
-- message is never lost and humans can still answer when the AI allowance is used up - and
-- are counted in total_message_count for reporting.
--
-- Which month (decision): the server's. A message is counted in the UTC month of the
-- transaction that writes it (now()), never in the month of messages.created_at: that
-- column is the time the sender reports (the backend may fill it from the channel) and a
-- caller-chosen date two months back or a century ahead would land in a bucket whose
-- allowance is untouched. record_message_usage therefore takes no time argument.

create table public.company_message_usage (
  company_id uuid not null,
  month date not null,
  message_count bigint not null default 0,
  total_message_count bigint not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint company_message_usage_pkey primary key (company_id, month),
  constraint company_message_usage_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint company_message_usage_month_first_day_check check (month = date_trunc('month', month)::date),
  constraint company_message_usage_message_count_check check (message_count >= 0),
  constraint company_message_usage_total_message_count_check check (total_message_count >= message_count)
);

comment on table public.company_message_usage is
  'Messages per company per calendar month (UTC), maintained in the message''s own transaction. message_count (bot answers) is limited by the company''s effective monthly message limit (override or plan). doctor: allow legal_hold quota counters, not a record.';
comment on column public.company_message_usage.company_id is 'Company (tenant key).';
comment on column public.company_message_usage.month is 'First day of the month (UTC, server clock: the writing transaction''s now()) the messages were counted in; never taken from messages.created_at.';
comment on column public.company_message_usage.message_count is 'Billable messages of the month = bot messages; never exceeds private.effective_monthly_message_limit() (companies.monthly_message_limit, else the plan''s).';
comment on column public.company_message_usage.total_message_count is 'All messages of the month (every sender type), for reporting; not limited.';
comment on column public.company_message_usage.created_at is 'When the first message of the month was counted.';
comment on column public.company_message_usage.updated_at is 'When the latest message of the month was counted.';

create function private.effective_monthly_message_limit(p_company_id uuid) returns integer
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce(c.monthly_message_limit, p.monthly_message_limit)
    from public.companies c
    join public.subscription_plans p on p.code = c.subscription_plan
   where c.id = p_company_id
$$;
comment on function private.effective_monthly_message_limit(uuid) is
  'Monthly message limit that applies to a company: its override (companies.monthly_message_limit) or else its plan''s; null = unlimited.';
revoke execute on function private.effective_monthly_message_limit(uuid) from public;

create function private.record_message_usage(p_company_id uuid, p_billable boolean)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  -- the server clock (transaction time), never a time the caller chose
  v_month date := pg_catalog.date_trunc('month', pg_catalog.now() at time zone 'UTC')::date;
  v_limit bigint;
  v_plan text;
  v_count bigint;
begin
  select c.subscription_plan, private.effective_monthly_message_limit(c.id) into v_plan, v_limit
    from public.companies c
   where c.id = p_company_id;

  if p_billable and v_limit is not null and v_limit <= 0 then
    v_count := 0;
  else
    insert into public.company_message_usage as u (company_id, month, message_count, total_message_count)
    values (p_company_id, v_month, case when p_billable then 1 else 0 end, 1)
    on conflict (company_id, month) do update
       set message_count = u.message_count + excluded.message_count,
           total_message_count = u.total_message_count + 1,
           updated_at = now()
     where not p_billable or v_limit is null or u.message_count < v_limit
    returning u.message_count into v_count;
    if found then
      return;
    end if;
    v_count := v_limit;
  end if;
  raise exception using errcode = 'NA001',
    message = format('monthly message limit reached for plan %s: %s of %s (%s)', v_plan, v_count, v_limit, pg_catalog.to_char(v_month, 'YYYY-MM')),
    hint = 'Upgrade the subscription plan, or wait for the next month (the allowance resets on the 1st, UTC). End-user and operator messages are still accepted.';
end
$$;
comment on function private.record_message_usage(uuid, boolean) is
  'Counts one message in company_message_usage for the current UTC month of the server clock (now(), never the message''s created_at); a billable (bot) message beyond the effective monthly message limit raises NA001. Race-free.';
revoke execute on function private.record_message_usage(uuid, boolean) from public, anon, authenticated;

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
create trigger company_message_usage_0_tenant_guard
  before insert or update on public.company_message_usage
  for each row execute function private.reject_other_tenant_insert();
comment on trigger company_message_usage_0_tenant_guard on public.company_message_usage is
  'Fires first: company_id never changes (any role); a member inserts only into their own company.';
