-- Business functions (RPC) of companies and membership: atomic creation of a
-- company with its owner, and the explicit hand-over of ownership.

{% from 'functions/_rpc.sql' import exposed_rpc -%}
create function public.create_company_with_owner(
  p_name text,
  p_industry text default null,
  p_plan text default 'free',
  p_full_name text default null
) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  v_auth_uid uuid := auth.uid();
  v_email text;
  v_meta jsonb;
  v_plan public.subscription_plans%rowtype;
  v_company_id uuid;{% if profile == 'citus' %}
  v_user_id uuid := gen_random_uuid();{% endif %}
begin
  if v_auth_uid is null then
    raise exception using errcode = '42501', message = 'not authenticated', hint = 'Sign in before creating a company.';
  end if;
  select lower(u.email), u.raw_user_meta_data -- the identity's record, never the JWT email claim
    into v_email, v_meta
    from auth.users u
   where u.id = v_auth_uid;
  if not found then
    raise exception using errcode = '42501', message = 'unknown auth identity', hint = 'Sign in again.';
  end if;
  if exists (select 1 from {{ 'private.memberships' if profile == 'citus' else 'public.users' }} m where m.auth_user_id = v_auth_uid) then
    raise exception using
      errcode = '42501',
      message = 'caller already belongs to a company',
      hint = 'An identity can be a member of one company only; leave it or ask its owner to remove you first.';
  end if;
  if v_email is null then
    raise exception using errcode = '22023', message = 'the identity has no email', hint = 'Add an email to the account first.';
  end if;
  if p_name is null or char_length(btrim(p_name)) not between 1 and 200 then
    raise exception using errcode = '22023', message = 'company name must have 1 to 200 characters';
  end if;
  select * into v_plan from public.subscription_plans p where p.code = coalesce(p_plan, 'free') and p.is_public;
  if not found then
    raise exception using
      errcode = '22023',
      message = format('unknown plan %L', p_plan),
      hint = 'Choose a public plan from public.subscription_plans.';
  end if;
  -- Self-service is free: nobody pays at signup, so nobody picks a paid (or
  -- custom-priced: null) plan or a trial here. The backend (service_role) changes
  -- subscription_plan/subscription_status after checkout.
  if v_plan.monthly_price_cents is distinct from 0 then
    raise exception using
      errcode = '42501',
      message = 'self-service signup starts on the free plan',
      hint = 'Create the company on a free plan; a paid plan or a trial is set by the backend (service_role) after checkout.';
  end if;

  insert into public.companies (name, industry, subscription_plan, subscription_status, created_by_auth_user_id)
  values (btrim(p_name), nullif(btrim(p_industry), ''), v_plan.code, 'active', v_auth_uid)
  returning id into v_company_id;

  begin{% if profile == 'citus' %}
    -- Profile citus: the membership copy first (users_membership_copy checks the row against it).
    insert into private.memberships (auth_user_id, company_id, id, role, is_active)
    values (v_auth_uid, v_company_id, v_user_id, 'owner', true);{% endif %}
    insert into public.users (company_id, {{ 'id, ' if profile == 'citus' }}auth_user_id, email, full_name, role)
    values (v_company_id, {{ 'v_user_id, ' if profile == 'citus' }}v_auth_uid, v_email,
        coalesce(nullif(btrim(p_full_name), ''), nullif(btrim(v_meta ->> 'full_name'), '')), 'owner');
  exception when unique_violation then
    -- A concurrent call for the same identity won the race.
    raise exception using
      errcode = '42501',
      message = 'caller already belongs to a company',
      hint = 'An identity can be a member of one company only.';
  end;
  return v_company_id;
end
$$;
comment on function public.create_company_with_owner(text, text, text, text) is
  'RPC: an authenticated identity without a company creates a company on a free public plan (monthly_price_cents = 0; default free), active, and becomes its owner, atomically. Returns the company id. Self-service never picks a paid or custom-priced plan nor a trial: the backend (service_role) sets subscription_plan/subscription_status after checkout. Errors: 42501 not authenticated / already a member / paid or custom-priced plan; 22023 bad name, unknown plan, no email. doctor: allow definer.read_only it creates a new company, which has no subscription state to honour yet.'{{ exposed_rpc() }};

create function public.transfer_ownership(p_new_owner_user_id uuid) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp{{ citus_sequential() }}
as $$
declare
  v_caller public.users%rowtype;
  v_updated integer;
begin
  select * into v_caller from public.users u where u.auth_user_id = auth.uid() and u.is_active;
  if not found or v_caller.role <> 'owner' then
    raise exception using
      errcode = '42501',
      message = 'only the owner can transfer ownership',
      hint = 'Ask the owner of your company.';
  end if;
  perform private.require_company_writable(v_caller.company_id);
  if p_new_owner_user_id is null or p_new_owner_user_id = v_caller.id
     or not exists (select 1 from public.users u
             where u.company_id = v_caller.company_id and u.id = p_new_owner_user_id and u.is_active) then
    raise exception using
      errcode = '22023',
      message = 'the new owner must be another active member of your company',
      hint = 'Pass the public.users.id of an active member.';
  end if;{% if profile == 'citus' %}
  -- Profile citus: the membership copy first (users_membership_copy checks both rows against it).
  update private.memberships m
     set role = case when m.id = v_caller.id then 'administrador' else 'owner' end::public.user_role
   where m.company_id = v_caller.company_id and m.id in (v_caller.id, p_new_owner_user_id);{% endif %}
  -- One statement: the old owner is demoted (CTE, run first because the
  -- main update waits for its row count) before the new owner is promoted,
  -- so neither users_one_owner_per_company_key nor the "never zero owners"
  -- statement check is violated at any point.
  with demoted as (
    update public.users
       set role = 'administrador'
     where company_id = v_caller.company_id and id = v_caller.id
    returning id
  )
  update public.users
     set role = 'owner'
   where company_id = v_caller.company_id
     and id = p_new_owner_user_id
     and (select count(*) from demoted) = 1;
  get diagnostics v_updated = row_count;
  if v_updated <> 1 then
    raise exception using errcode = 'P0001', message = 'ownership transfer failed';
  end if;
end
$$;
comment on function public.transfer_ownership(uuid) is
  'RPC: the owner hands ownership to another active member of the company (p_new_owner_user_id = public.users.id); the new owner becomes owner and the old one administrador, atomically. Errors: 42501 caller is not the owner; NA002 company read-only (suspended/canceled); 22023 bad target.'{{ exposed_rpc() }};

revoke execute on function public.create_company_with_owner(text, text, text, text) from public, anon;
revoke execute on function public.transfer_ownership(uuid) from public, anon;
grant execute on function public.create_company_with_owner(text, text, text, text) to authenticated;
grant execute on function public.transfer_ownership(uuid) to authenticated;
