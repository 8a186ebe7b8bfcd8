-- Why: BEFORE ROW triggers run before the RLS WITH CHECK of an INSERT, and several of
-- them are security definer and look rows up by the *proposed* company_id. Without a
-- guard, a member could propose another company's id and learn about its rows from a
-- trigger's error instead of getting the RLS refusal (a chatbot's channels and state,
-- a user's role, a conversation's status). This generic guard fires FIRST on every
-- tenant table that authenticated may insert into (trigger names sort before every
-- other trigger of the table: "<table>_0_tenant_guard", created in each table's file)
-- and refuses a row of another company with exactly the error RLS would give, before
-- any lookup happens; the outcome is then the same whether or not the referenced rows
-- exist (tests: tests/pgtap/0010_catalog_hardening.sql and each domain's file).
--
-- The same function also runs before every UPDATE that changes company_id, on EVERY
-- tenant table (live, archive and private: every table with company_id), as the
-- trigger "<table>_0_tenant_key", and refuses the change for every role: service_role
-- and the migration owner included. A row never moves between companies (its
-- references, counters, audit trail and legal holds would silently stay behind); the
-- only escape hatch is a superuser disabling triggers on purpose. A new tenant table
-- gets both triggers, or `neurant-db doctor` (tenant.guard) fails.
--
-- Both triggers carry a WHEN clause with exactly the function's own first test
-- (row_security_active on insert, a changed company_id on update): the server evaluates
-- it without calling the function, so a backend write (service_role) or an update that
-- leaves company_id alone calls nothing (issue 11: three calls per message written).
-- The function still checks for itself, and doctor (tenant.guard) accepts no other WHEN.

{% from 'schema/_tenant_guard.sql' import tenant_guard -%}
create function private.reject_other_tenant_insert()
returns trigger
language plpgsql
volatile
security invoker -- must run as the caller: row_security_active() looks at current_user
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'UPDATE' then
    if new.company_id is distinct from old.company_id then
      raise exception using errcode = '42501',
        message = format('the tenant key of %s cannot change',
                         case when tg_table_schema = 'public' then tg_table_name::text
                              else tg_table_schema || '.' || tg_table_name end),
        hint = 'Rows never move between companies; create the row in the other company instead.';
    end if;
    return new;
  end if;
  -- row_security_active: exactly the callers whose row RLS would check on this table (a
  -- built-in, no catalog query: issue 11); for anyone else, RLS would refuse nothing
  if pg_catalog.row_security_active(tg_relid)
     and new.company_id is distinct from private.get_user_company_id() then
    raise exception using errcode = '42501',
      message = format('new row violates row-level security policy for table "%s"', tg_table_name),
      hint = 'Rows can only be written in your own company.';
  end if;
  return new;
end;
$$;
comment on function private.reject_other_tenant_insert() is
  'Tenant guard trigger (before insert or update, fires first, on every tenant table). Insert: a caller subject to RLS on the table (row_security_active: authenticated) may only propose rows of its own company; anything else fails with the RLS error (42501) before any other trigger can look at, or report on, another company''s rows. Update: company_id never changes, for any role (42501). Security invoker on purpose.';
revoke execute on function private.reject_other_tenant_insert() from public, anon, authenticated;

-- public.audit_logs is created before this guard (0050), so its guard is attached here.
{{ tenant_guard('public.audit_logs') }}
