-- Why: which operadores work which chatbots (seed section 2, "Chatbot Operators";
-- "operators can only access assigned chatbots"). Every operador-scoped policy of the
-- conversation domain derives from these rows through private.get_assigned_chatbot_ids().

{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
create table public.chatbot_operators (
  company_id uuid not null,
  chatbot_id uuid not null,
  user_id uuid not null,
  assigned_by uuid,
  created_at timestamptz not null default now(),
  constraint chatbot_operators_pkey primary key (company_id, chatbot_id, user_id),
  constraint chatbot_operators_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint chatbot_operators_chatbot_fkey foreign key (company_id, chatbot_id)
    references public.chatbots (company_id, id) on delete cascade,
  constraint chatbot_operators_user_fkey foreign key (company_id, user_id)
    references public.users (company_id, id) on delete cascade,
  constraint chatbot_operators_assigned_by_fkey foreign key (company_id, assigned_by)
    references public.users (company_id, id) on delete no action
);

comment on table public.chatbot_operators is
  'Assignment of operador users to chatbots (tenant table). Only active users with role operador can be assigned. '
  'Owner/administrador/supervisor assign and unassign; an operador reads its own assignments. Reassigning = delete + insert.'{{ doctor_notes('public.chatbot_operators') }};
comment on column public.chatbot_operators.company_id is 'Owning company (tenant key).';
comment on column public.chatbot_operators.chatbot_id is 'Assigned chatbot.';
comment on column public.chatbot_operators.user_id is 'Assigned user; must be an active operador of the same company.';
comment on column public.chatbot_operators.assigned_by is 'User who made the assignment (set from the caller''s identity); null when done by the backend or after that user was deleted.';
comment on column public.chatbot_operators.created_at is 'When the assignment was made.';

create function private.chatbot_operators_before_write()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_role public.user_role;
  v_active boolean;
  v_user_id uuid := private.get_current_user_id();
begin
  if tg_op = 'UPDATE' and new.company_id = old.company_id and new.user_id = old.user_id then
    -- only the chatbot or the bookkeeping changed: the assignee was validated on insert
    if new.assigned_by is not null then
      new.assigned_by := old.assigned_by; -- may only be cleared (user deletion), never re-pointed
    end if;
    return new;
  end if;
  select u.role, u.is_active into v_role, v_active
    from public.users u
   where u.company_id = new.company_id and u.id = new.user_id;
  -- a missing user is left to the foreign key (23503)
  if found and (v_role is distinct from 'operador' or not v_active) then
    raise exception using errcode = '23514',
      message = format('only active users with role operador can be assigned to a chatbot (user %s is %s%s)',
                       new.user_id, v_role, case when v_active then '' else ', inactive' end),
      hint = 'Supervisors and above already see every chatbot; change the user''s role first if needed.';
  end if;
  if tg_op = 'INSERT' then
    if v_user_id is not null then
      new.assigned_by := v_user_id;
    end if;
  elsif new.assigned_by is not null then
    new.assigned_by := old.assigned_by;
  end if;
  return new;
end
$$;
comment on function private.chatbot_operators_before_write() is
  'Trigger: only active operador users can be assigned (23514); stamps assigned_by with the calling user.';
revoke execute on function private.chatbot_operators_before_write() from public, anon, authenticated;

create trigger chatbot_operators_before_write
  before insert or update on public.chatbot_operators
  for each row execute function private.chatbot_operators_before_write();
comment on trigger chatbot_operators_before_write on public.chatbot_operators is 'Validates the assignee''s role; stamps assigned_by.';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.chatbot_operators') }}

-- Audit trail (private.audit_row_change, schema/0050_audit_trail.sql).
create trigger chatbot_operators_audit
  after insert or update or delete on public.chatbot_operators
  for each row execute function private.audit_row_change('company_id', '', 'updated_at');
comment on trigger chatbot_operators_audit on public.chatbot_operators is 'Audits operator assignments.';

-- A member can be removed while the history stays (private.clear_user_reference).
create trigger users_clear_chatbot_operators_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.chatbot_operators', 'assigned_by');
comment on trigger users_clear_chatbot_operators_references on public.users is
  'Clears chatbot_operators.assigned_by (who assigned) before a member is deleted.';
