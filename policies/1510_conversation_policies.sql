-- Why: row level security and grants of the conversation domain, per the access matrix of
-- docs/access-matrix.md: conversations, messages, reactions and HITL escalations are visible to
-- owner/administrador/supervisor for the whole company and to an operador only for its
-- assigned chatbots (through the denormalised chatbot_id and the assigned-ids array, no
-- per-row subquery). Staff write operator messages as themselves; the "only while in
-- human mode" rule is enforced by the messages trigger (42501). Message usage is readable
-- by owner/administrador/supervisor, written only by the database.


-- conversations -------------------------------------------------------------------
alter table public.conversations enable row level security;
alter table public.conversations force row level security;
revoke all on table public.conversations from public, anon, authenticated;
grant select on table public.conversations to authenticated;
grant insert (company_id, chatbot_id, end_user_id, channel, status, assigned_operator_id) on table public.conversations to authenticated;
grant update (status, assigned_operator_id) on table public.conversations to authenticated;
grant delete on table public.conversations to authenticated;
grant all on table public.conversations to service_role;

create policy select_visible on public.conversations
  for select to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and chatbot_id = any ((select public.get_visible_chatbot_ids())::uuid[])
  );
comment on policy select_visible on public.conversations is
  'Owner/administrador/supervisor read every conversation of their company; an operador reads those of its assigned chatbots.';

create policy insert_as_supervisor on public.conversations
  for insert to authenticated
  with check (
    company_id = (select public.get_user_company_id())
    and (select public.get_user_role()) in ('owner', 'administrador', 'supervisor')
  );
comment on policy insert_as_supervisor on public.conversations is
  'Owner/administrador/supervisor open conversations (e.g. proactive outreach); the backend opens the rest.';

create policy update_visible on public.conversations
  for update to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and chatbot_id = any ((select public.get_visible_chatbot_ids())::uuid[])
  )
  with check (
    company_id = (select public.get_user_company_id())
    and ((select public.get_user_role()) in ('owner', 'administrador', 'supervisor')
         or chatbot_id = any ((select public.get_assigned_chatbot_ids())::uuid[]))
  );
comment on policy update_visible on public.conversations is
  'Whoever sees a conversation may change its status/assignee (operador: assigned chatbots only); transitions are validated by trigger.';

create policy delete_as_admin on public.conversations
  for delete to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and (select public.get_user_role()) in ('owner', 'administrador')
  );
comment on policy delete_as_admin on public.conversations is
  'Owner/administrador delete conversations (e.g. data erasure requests) with their messages.';

-- messages ------------------------------------------------------------------------
alter table public.messages enable row level security;
alter table public.messages force row level security;
revoke all on table public.messages from public, anon, authenticated;
grant select on table public.messages to authenticated;
grant insert (company_id, conversation_id, chatbot_id, sender_type, content) on table public.messages to authenticated;
grant delete on table public.messages to authenticated;
grant all on table public.messages to service_role;

create policy select_visible on public.messages
  for select to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and chatbot_id = any ((select public.get_visible_chatbot_ids())::uuid[])
  );
comment on policy select_visible on public.messages is
  'Owner/administrador/supervisor read every message of their company; an operador reads those of its assigned chatbots.';

create policy insert_operator_message on public.messages
  for insert to authenticated
  with check (
    company_id = (select public.get_user_company_id())
    and ((select public.get_user_role()) in ('owner', 'administrador', 'supervisor')
         or chatbot_id = any ((select public.get_assigned_chatbot_ids())::uuid[]))
    and sender_type = 'operator'
    and sender_id = (select public.get_current_user_id())
  );
comment on policy insert_operator_message on public.messages is
  'Users write only operator messages, as themselves, in conversations they see (operador: assigned chatbots); human mode is required by trigger.';

create policy delete_as_admin on public.messages
  for delete to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and (select public.get_user_role()) in ('owner', 'administrador')
  );
comment on policy delete_as_admin on public.messages is
  'Owner/administrador delete messages (e.g. data erasure requests).';

-- message_reactions ---------------------------------------------------------------
alter table public.message_reactions enable row level security;
alter table public.message_reactions force row level security;
revoke all on table public.message_reactions from public, anon, authenticated;
grant select on table public.message_reactions to authenticated;
grant insert (company_id, message_id, conversation_id, chatbot_id, reaction, rating, comment) on table public.message_reactions to authenticated;
grant delete on table public.message_reactions to authenticated;
grant all on table public.message_reactions to service_role;

create policy select_visible on public.message_reactions
  for select to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and chatbot_id = any ((select public.get_visible_chatbot_ids())::uuid[])
  );
comment on policy select_visible on public.message_reactions is
  'Owner/administrador/supervisor read every reaction of their company; an operador reads those of its assigned chatbots.';

create policy insert_visible on public.message_reactions
  for insert to authenticated
  with check (
    company_id = (select public.get_user_company_id())
    and ((select public.get_user_role()) in ('owner', 'administrador', 'supervisor')
         or chatbot_id = any ((select public.get_assigned_chatbot_ids())::uuid[]))
    and created_by = (select public.get_current_user_id())
  );
comment on policy insert_visible on public.message_reactions is
  'Users who see a message may review it, as themselves (operador: assigned chatbots only).';

create policy delete_as_admin on public.message_reactions
  for delete to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and (select public.get_user_role()) in ('owner', 'administrador')
  );
comment on policy delete_as_admin on public.message_reactions is
  'Owner/administrador delete reactions of their company.';

-- hitl_escalations ----------------------------------------------------------------
alter table public.hitl_escalations enable row level security;
alter table public.hitl_escalations force row level security;
revoke all on table public.hitl_escalations from public, anon, authenticated;
grant select on table public.hitl_escalations to authenticated;
grant all on table public.hitl_escalations to service_role;

create policy select_visible on public.hitl_escalations
  for select to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and chatbot_id = any ((select public.get_visible_chatbot_ids())::uuid[])
  );
comment on policy select_visible on public.hitl_escalations is
  'Owner/administrador/supervisor read every escalation of their company; an operador reads those of its assigned chatbots. Rows are written by the database only.';

-- company_message_usage -----------------------------------------------------------
alter table public.company_message_usage enable row level security;
alter table public.company_message_usage force row level security;
revoke all on table public.company_message_usage from public, anon, authenticated;
grant select on table public.company_message_usage to authenticated;
grant all on table public.company_message_usage to service_role;

create policy select_as_supervisor on public.company_message_usage
  for select to authenticated
  using (
    company_id = (select public.get_user_company_id())
    and (select public.get_user_role()) in ('owner', 'administrador', 'supervisor')
  );
comment on policy select_as_supervisor on public.company_message_usage is
  'Owner/administrador/supervisor read their company''s monthly message usage; written by the message trigger only.';

-- Read-only tenants: a suspended or canceled company writes nothing (policies/_read_only.sql).
{% from 'policies/_read_only.sql' import read_only_when_inactive %}
{{ read_only_when_inactive('public.conversations') }}
{{ read_only_when_inactive('public.messages') }}
{{ read_only_when_inactive('public.message_reactions') }}
{{ read_only_when_inactive('public.hitl_escalations') }}
{{ read_only_when_inactive('public.company_message_usage') }}
