-- Why: row level security and grants of the chatbot domain, per the access matrix of
-- docs/access-matrix.md: templates readable by every signed-in user; chatbots full for
-- owner/administrador, read-all for supervisor, read-assigned for operador; operator
-- assignments managed by owner/administrador/supervisor, an operador reads its own.
-- Helper calls are wrapped in (select ...) so they run once per statement.
{% from 'policies/_rls.sql' import rls -%}

-- chatbot_templates (global reference table) ------------------------------------------
{{ rls('public.chatbot_templates') }}

create policy select_all on public.chatbot_templates
  for select to authenticated
  using (true);
comment on policy select_all on public.chatbot_templates is 'Every authenticated user reads the global chatbot presets; only service_role writes them.';

-- chatbots -------------------------------------------------------------------------------
{{ rls('public.chatbots') }}

create policy select_visible on public.chatbots
  for select to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and ((select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
         or id = any ((select private.get_assigned_chatbot_ids())::uuid[]))
  );
comment on policy select_visible on public.chatbots is
  'Owner/administrador/supervisor read every chatbot of their company; an operador reads only the chatbots assigned to it.';

create policy insert_as_admin on public.chatbots
  for insert to authenticated
  with check (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador')
  );
comment on policy insert_as_admin on public.chatbots is 'Owner/administrador create chatbots in their company (within the plan''s chatbot limit).';

create policy update_as_admin on public.chatbots
  for update to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador')
  )
  with check (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador')
  );
comment on policy update_as_admin on public.chatbots is 'Owner/administrador change chatbots of their company.';

create policy delete_as_admin on public.chatbots
  for delete to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador')
  );
comment on policy delete_as_admin on public.chatbots is 'Owner/administrador delete chatbots of their company (frees one unit of the plan''s chatbot limit).';

-- chatbot_operators ----------------------------------------------------------------------
{{ rls('public.chatbot_operators') }}

create policy select_visible on public.chatbot_operators
  for select to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and ((select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
         or user_id = (select private.get_current_user_id()))
  );
comment on policy select_visible on public.chatbot_operators is
  'Owner/administrador/supervisor read every assignment of their company; an operador reads its own assignments.';

create policy insert_as_supervisor on public.chatbot_operators
  for insert to authenticated
  with check (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
  );
comment on policy insert_as_supervisor on public.chatbot_operators is 'Owner/administrador/supervisor assign operadores of their company to its chatbots.';

create policy delete_as_supervisor on public.chatbot_operators
  for delete to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
  );
comment on policy delete_as_supervisor on public.chatbot_operators is 'Owner/administrador/supervisor unassign operadores of their company.';
