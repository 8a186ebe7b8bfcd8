-- Why: operador-scoped policies need "the caller's assigned chatbots" without a per-row
-- subquery into chatbot_operators (slow, and rejected by Citus on distributed tables).
-- This security definer helper returns them as an array that a policy evaluates once per
-- statement: chatbot_id = any ((select public.get_assigned_chatbot_ids())::uuid[]).

create function public.get_assigned_chatbot_ids()
returns uuid[]
language sql
stable
security definer
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}
as $$
  select coalesce(pg_catalog.array_agg(co.chatbot_id order by co.chatbot_id), '{}')
    from public.chatbot_operators co
   where co.company_id = public.get_user_company_id()
     and co.user_id = public.get_current_user_id()
$$;
comment on function public.get_assigned_chatbot_ids() is
  'Ids of the chatbots the calling user is assigned to as operador (empty array for none or no user). Use in policies wrapped in (select ...).';

revoke execute on function public.get_assigned_chatbot_ids() from public, anon;
grant execute on function public.get_assigned_chatbot_ids() to authenticated, service_role;

-- Why (issue 11): the operador branch of a policy written as
--   (role in (owner, administrador, supervisor) or chatbot_id = any (assigned))
-- is an OR the planner cannot turn into an index condition, so an operador's inbox read
-- every conversation of the tenant. This helper folds the role test into the array: every
-- chatbot of the company for owner/administrador/supervisor, the assigned ones for an
-- operador, none otherwise; a policy then reads
--   company_id = (select ...company_id...) and chatbot_id = any ((select public.get_visible_chatbot_ids())::uuid[])
-- and both terms are index conditions. Evaluated once per statement (InitPlan), from the
-- live users and chatbot_operators rows: a removed or demoted member loses access on the
-- next statement. Not for tables whose rows ARE chatbots (a chatbot created by the same
-- statement would not be in the array yet): public.chatbots keeps the role test.
create function public.get_visible_chatbot_ids()
returns uuid[]
language plpgsql -- two cached plans: a quarter of the cost of the same as one SQL query (union of the two cases)
stable
security definer
set search_path = pg_catalog, pg_temp{{ citus_settings('') }}
as $$
declare
  v_user_id uuid;
  v_company_id uuid;
  v_role public.user_role;
begin
  select u.id, u.company_id, u.role into v_user_id, v_company_id, v_role
    from public.users u
   where u.auth_user_id = auth.uid()
     and u.is_active;
  if v_role in ('owner', 'administrador', 'supervisor') then
    return array(select b.id from public.chatbots b where b.company_id = v_company_id);
  elsif v_role = 'operador' then
    return array(select co.chatbot_id from public.chatbot_operators co
                  where co.company_id = v_company_id and co.user_id = v_user_id);
  end if;
  return '{}'::uuid[];
end
$$;
comment on function public.get_visible_chatbot_ids() is
  'Ids of the chatbots whose conversations the caller may see: all of its company''s for owner/administrador/supervisor, the assigned ones for an operador, empty otherwise (no active membership). Use in policies wrapped in (select ...): one lookup per statement, and chatbot_id = any (...) is an index condition.';

revoke execute on function public.get_visible_chatbot_ids() from public, anon;
grant execute on function public.get_visible_chatbot_ids() to authenticated, service_role;
