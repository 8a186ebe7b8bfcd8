-- Why: every hand-over of a conversation to a human is recorded with its reason (seed
-- section 3, "Escalación HITL basada en triggers configurables"), so supervisors can see
-- why the bot gave up and tune the per-chatbot triggers. Rows are written only by the
-- database (automatic ones by escalate_conversation, manual ones by the conversation
-- trigger below); clients read them.

{% from 'schema/_tenant_guard.sql' import tenant_guard -%}
create table public.hitl_escalations (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  conversation_id uuid not null,
  chatbot_id uuid not null,
  reason public.hitl_escalation_reason not null,
  detail text not null default '',
  escalated_by uuid,
  created_at timestamptz not null default now(),
  constraint hitl_escalations_pkey primary key (company_id, id),
  constraint hitl_escalations_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint hitl_escalations_conversation_fkey foreign key (company_id, conversation_id, chatbot_id)
    references public.conversations (company_id, id, chatbot_id) on delete cascade,
  constraint hitl_escalations_escalated_by_fkey foreign key (company_id, escalated_by)
    references public.users (company_id, id) on delete no action,
  constraint hitl_escalations_detail_length_check check (char_length(detail) <= 500)
);

comment on table public.hitl_escalations is
  'Log of conversations handed to a human (tenant table, append-only for clients): reason and detail of each escalation. '
  'Owner/administrador/supervisor read all of the company; operador reads those of assigned chatbots.';
comment on column public.hitl_escalations.company_id is 'Owning company (tenant key).';
comment on column public.hitl_escalations.id is 'Escalation id.';
comment on column public.hitl_escalations.conversation_id is 'Escalated conversation.';
comment on column public.hitl_escalations.chatbot_id is 'Chatbot of the conversation (denormalised for operador policies; kept equal to the conversation''s by the foreign key).';
comment on column public.hitl_escalations.reason is 'What triggered the escalation.';
comment on column public.hitl_escalations.detail is 'Specifics: matched keyword or phrase, turn count, rating, or empty for manual escalations.';
comment on column public.hitl_escalations.escalated_by is 'User who escalated manually; null for automatic escalations or after that user was deleted.';
comment on column public.hitl_escalations.created_at is 'When the conversation entered human mode (automatic escalations: the clock time of the escalation, equal to the conversation''s hitl_escalated_at).';

-- Automatic escalation used by the message and reaction triggers. Moves an active (bot
-- mode) conversation to waiting_human and records why; returns false when it was not in
-- bot mode. The reason is written here, by the only code that knows it, never handed to
-- the conversation trigger through a session setting or inferred from the trigger depth
-- (a client sets any custom setting and reaches any depth with a trigger of its own).
create function private.escalate_conversation(
  p_company_id uuid, p_conversation_id uuid, p_reason public.hitl_escalation_reason, p_detail text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_chatbot_id uuid;
  v_at timestamptz := pg_catalog.clock_timestamp();
begin
  if p_reason is null or p_reason = 'manual' then
    raise exception using errcode = '22023',
      message = format('an automatic escalation needs an automatic reason, not %s', coalesce(p_reason::text, 'null')),
      hint = 'Manual escalations are status changes of public.conversations; they are logged by its trigger.';
  end if;
  -- lock first: the row is written only for a conversation that is in bot mode now
  select c.chatbot_id into v_chatbot_id
    from public.conversations c
   where c.company_id = p_company_id and c.id = p_conversation_id and c.status = 'active'
     for no key update;
  if not found then
    return false;
  end if;
  -- the row and the status change carry the same time (hitl_escalated_at = created_at, a
  -- clock time no manual entry of this transaction gets: those are stamped now()); that
  -- is what tells conversations_log_escalation that this entry is already logged
  insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason, detail, escalated_by, created_at)
  values (p_company_id, p_conversation_id, v_chatbot_id, p_reason,
          pg_catalog.left(coalesce(p_detail, ''), 500), null, v_at);
  update public.conversations c
     set status = 'waiting_human', hitl_escalated_at = v_at
   where c.company_id = p_company_id and c.id = p_conversation_id;
  return true;
end
$$;
comment on function private.escalate_conversation(uuid, uuid, public.hitl_escalation_reason, text) is
  'Hands a bot-mode (active) conversation to a human (status waiting_human) and writes its public.hitl_escalations row with the automatic reason and detail itself; false when it was not in bot mode. '
  'Only the message/reaction triggers call it; no session setting is involved, so a client cannot forge a reason.';
revoke execute on function private.escalate_conversation(uuid, uuid, public.hitl_escalation_reason, text) from public, anon, authenticated;

-- Every other entry into human mode is a manual one: a status change by staff or a service,
-- logged as 'manual' by the calling user. An entry already logged by escalate_conversation
-- is recognised by its data, not by the session: an automatic row of this conversation
-- whose created_at is the entry's hitl_escalated_at. Members can write neither (no grant
-- on hitl_escalations, none on conversations.hitl_escalated_at); service_role may write
-- the log directly anyway.
create function private.conversations_log_escalation()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if new.is_hitl_active and (tg_op = 'INSERT' or not old.is_hitl_active)
     and not exists (select 1 from public.hitl_escalations e
                      where e.company_id = new.company_id and e.conversation_id = new.id
                        and e.created_at = new.hitl_escalated_at
                        and e.reason <> 'manual' and e.escalated_by is null) then
    insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason, detail, escalated_by)
    values (new.company_id, new.id, new.chatbot_id, 'manual', '', private.get_current_user_id());
  end if;
  return null;
end
$$;
comment on function private.conversations_log_escalation() is
  'Trigger: records a manual public.hitl_escalations row (reason manual, by the calling user) whenever a conversation enters human mode other than through private.escalate_conversation, which logs its automatic reason itself. '
  'Reads no session setting and no trigger depth: a session cannot forge the reason or hide the author.';
revoke execute on function private.conversations_log_escalation() from public, anon, authenticated;

-- (when: the function's first test, so the message path - which names status to reopen
-- a resolved conversation - calls nothing for a conversation in bot mode; issue 11)
create trigger conversations_log_escalation
  after insert or update of status on public.conversations
  for each row when (new.is_hitl_active)
  execute function private.conversations_log_escalation();
comment on trigger conversations_log_escalation on public.conversations is 'Logs every entry into human mode in public.hitl_escalations (fires only for rows in human mode).';

-- A member can be removed while the history stays (private.clear_user_reference).
create trigger users_clear_hitl_escalations_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.hitl_escalations', 'escalated_by');
comment on trigger users_clear_hitl_escalations_references on public.users is
  'Clears hitl_escalations.escalated_by (the escalation stays in the log) before a member is deleted.';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.hitl_escalations') }}
