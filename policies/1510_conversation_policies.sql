-- Why: row level security and grants of the conversation domain, per the access matrix of
-- docs/access-matrix.md: conversations, messages, reactions and HITL escalations are visible to
-- owner/administrador/supervisor for the whole company and to an operador only for its
-- assigned chatbots (through the denormalised chatbot_id and the assigned-ids array, no
-- per-row subquery). Staff write operator messages as themselves; the "only while in
-- human mode" rule is enforced by the messages trigger (42501). Message usage is readable
-- by owner/administrador/supervisor, written only by the database.
{% from 'policies/_rls.sql' import rls -%}


-- conversations -------------------------------------------------------------------
{{ rls('public.conversations') }}

create policy select_visible on public.conversations
  for select to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])
  );
comment on policy select_visible on public.conversations is
  'Owner/administrador/supervisor read every conversation of their company; an operador reads those of its assigned chatbots.';

create policy insert_as_supervisor on public.conversations
  for insert to authenticated
  with check (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
  );
comment on policy insert_as_supervisor on public.conversations is
  'Owner/administrador/supervisor open conversations (e.g. proactive outreach); the backend opens the rest.';

create policy update_visible on public.conversations
  for update to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])
  )
  with check (
    company_id = (select private.get_user_company_id())
    and ((select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
         or chatbot_id = any ((select private.get_assigned_chatbot_ids())::uuid[]))
  );
comment on policy update_visible on public.conversations is
  'Whoever sees a conversation may change its status/assignee (operador: assigned chatbots only); transitions are validated by trigger.';

create policy delete_as_admin on public.conversations
  for delete to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador')
  );
comment on policy delete_as_admin on public.conversations is
  'Owner/administrador delete conversations (e.g. data erasure requests) with their messages.';

-- messages ------------------------------------------------------------------------
{{ rls('public.messages') }}

create policy select_visible on public.messages
  for select to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])
  );
comment on policy select_visible on public.messages is
  'Owner/administrador/supervisor read every message of their company; an operador reads those of its assigned chatbots.';

create policy insert_operator_message on public.messages
  for insert to authenticated
  with check (
    company_id = (select private.get_user_company_id())
    and ((select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
         or chatbot_id = any ((select private.get_assigned_chatbot_ids())::uuid[]))
    and sender_type = 'operator'
    and sender_id = (select private.get_current_user_id())
  );
comment on policy insert_operator_message on public.messages is
  'Users write only operator messages, as themselves, in conversations they see (operador: assigned chatbots); human mode is required by trigger.';

create policy delete_as_admin on public.messages
  for delete to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador')
  );
comment on policy delete_as_admin on public.messages is
  'Owner/administrador delete messages (e.g. data erasure requests).';

-- message_reactions ---------------------------------------------------------------
{{ rls('public.message_reactions') }}

create policy select_visible on public.message_reactions
  for select to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])
  );
comment on policy select_visible on public.message_reactions is
  'Owner/administrador/supervisor read every reaction of their company; an operador reads those of its assigned chatbots.';

create policy insert_visible on public.message_reactions
  for insert to authenticated
  with check (
    company_id = (select private.get_user_company_id())
    and ((select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
         or chatbot_id = any ((select private.get_assigned_chatbot_ids())::uuid[]))
    and created_by = (select private.get_current_user_id())
  );
comment on policy insert_visible on public.message_reactions is
  'Users who see a message may review it, as themselves (operador: assigned chatbots only).';

create policy delete_as_admin on public.message_reactions
  for delete to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador')
  );
comment on policy delete_as_admin on public.message_reactions is
  'Owner/administrador delete reactions of their company.';

-- hitl_escalations ----------------------------------------------------------------
{{ rls('public.hitl_escalations') }}

create policy select_visible on public.hitl_escalations
  for select to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and chatbot_id = any ((select private.get_visible_chatbot_ids())::uuid[])
  );
comment on policy select_visible on public.hitl_escalations is
  'Owner/administrador/supervisor read every escalation of their company; an operador reads those of its assigned chatbots. Rows are written by the database only.';

-- company_message_usage -----------------------------------------------------------
{{ rls('public.company_message_usage') }}

create policy select_as_supervisor on public.company_message_usage
  for select to authenticated
  using (
    company_id = (select private.get_user_company_id())
    and (select private.get_user_role()) in ('owner', 'administrador', 'supervisor')
  );
comment on policy select_as_supervisor on public.company_message_usage is
  'Owner/administrador/supervisor read their company''s monthly message usage; written by the message trigger only.';
