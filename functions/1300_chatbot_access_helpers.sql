-- Why: operador-scoped policies need "the caller's assigned chatbots" without a per-row
-- subquery into chatbot_operators (slow, and rejected by Citus on distributed tables).
-- This security definer helper returns them as an array that a policy evaluates once per
-- statement: chatbot_id = any ((select public.get_assigned_chatbot_ids())::uuid[]).

create function public.get_assigned_chatbot_ids()
returns uuid[]
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
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
