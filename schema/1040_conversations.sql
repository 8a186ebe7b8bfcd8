-- Why: chat sessions between an end user and a chatbot (seed section 3, "Conversations"),
-- with the human-in-the-loop state machine. Status transitions are validated here so no
-- client or service can put a conversation into an impossible state (closed is terminal:
-- a returning end user starts a new conversation; resolved reopens to active).

{% from 'schema/_tenant_guard.sql' import tenant_guard -%}
create table public.conversations (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  chatbot_id uuid not null,
  end_user_id text not null,
  channel public.channel_type not null,
  status public.conversation_status not null default 'active',
  is_hitl_active boolean not null generated always as (status in ('waiting_human', 'human')) stored,
  assigned_operator_id uuid,
  hitl_escalated_at timestamptz,
  bot_turns_without_resolution integer not null default 0,
  last_message_at timestamptz,
  closed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint conversations_pkey primary key (company_id, id),
  constraint conversations_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  -- target of the messages FK that keeps messages.chatbot_id equal to the conversation's;
  -- status included so that a count of a member's open conversations, whose policy puts
  -- chatbot_id in the index condition, is an index-only scan (issue 11: 1.34x -> 1.25x)
  constraint conversations_id_chatbot_key unique (company_id, id, chatbot_id) include (status),
  constraint conversations_chatbot_fkey foreign key (company_id, chatbot_id)
    references public.chatbots (company_id, id) on delete cascade,
  constraint conversations_assigned_operator_fkey foreign key (company_id, assigned_operator_id)
    references public.users (company_id, id) on delete no action,
  constraint conversations_end_user_id_length_check check (char_length(end_user_id) between 1 and 255),
  constraint conversations_bot_turns_without_resolution_check check (bot_turns_without_resolution >= 0),
  constraint conversations_closed_at_check check ((status = 'closed') = (closed_at is not null))
);

comment on table public.conversations is
  'Chat sessions of a chatbot with one end user on one channel (tenant table). Owner/administrador/supervisor: all of the company; '
  'operador: conversations of assigned chatbots only. Status transitions validated by private.conversations_guard_transition().';
comment on column public.conversations.company_id is 'Owning company (tenant key).';
comment on column public.conversations.id is 'Conversation id, unique within the company.';
comment on column public.conversations.chatbot_id is 'Chatbot handling the conversation; immutable.';
comment on column public.conversations.end_user_id is 'Channel-specific identifier of the end user (phone number, widget visitor id, e-mail, ...), 1-255 characters; immutable.';
comment on column public.conversations.channel is 'Channel of the conversation; must be one of the chatbot''s channels when created; immutable.';
comment on column public.conversations.status is
  'State: active (bot answers) -> waiting_human/human (HITL) -> resolved/closed. Allowed: active->{waiting_human,human,resolved,closed}; '
  'waiting_human->{active,human,resolved,closed}; human->{active,waiting_human,resolved,closed}; resolved->{active,closed}; closed is terminal.';
comment on column public.conversations.is_hitl_active is 'True while a human owns the conversation (status waiting_human or human); generated from status, never written directly.';
comment on column public.conversations.assigned_operator_id is 'User handling the conversation in human mode; an operador must be assigned to the chatbot. Cleared when that user is deleted.';
comment on column public.conversations.hitl_escalated_at is 'When the conversation last entered human mode: the transaction time, or for an automatic escalation the created_at of its hitl_escalations row (which is how the log tells the two apart).';
comment on column public.conversations.bot_turns_without_resolution is 'Consecutive bot answers since the conversation was opened, resolved or handed back; compared with chatbots.hitl_max_bot_turns.';
comment on column public.conversations.last_message_at is 'Time of the latest message, maintained by the messages trigger.';
comment on column public.conversations.closed_at is 'When the conversation was closed; set exactly when status = closed.';
comment on column public.conversations.created_at is 'Creation time.';
comment on column public.conversations.updated_at is 'Last change, maintained by private.touch_updated_at().';

-- The assignee must be an active member of the company; an operador additionally must be
-- assigned to the conversation's chatbot.
create function private.conversations_check_assignee(p_company_id uuid, p_chatbot_id uuid, p_user_id uuid)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_role public.user_role;
  v_active boolean;
begin
  if p_user_id is null then
    return;
  end if;
  select u.role, u.is_active into v_role, v_active
    from public.users u where u.company_id = p_company_id and u.id = p_user_id;
  if not found then
    return; -- the foreign key reports it (23503)
  end if;
  if not v_active then
    raise exception using errcode = '23514',
      message = format('user %s is inactive and cannot handle conversations', p_user_id),
      hint = 'Assign an active user.';
  end if;
  if v_role = 'operador' and not exists (
       select from public.chatbot_operators co
        where co.company_id = p_company_id and co.chatbot_id = p_chatbot_id and co.user_id = p_user_id) then
    raise exception using errcode = '23514',
      message = format('operador %s is not assigned to chatbot %s', p_user_id, p_chatbot_id),
      hint = 'Assign the operador to the chatbot (public.chatbot_operators) first.';
  end if;
end
$$;
comment on function private.conversations_check_assignee(uuid, uuid, uuid) is
  'Raises 23514 unless the user may handle conversations of the chatbot (active; operadores only on assigned chatbots).';
revoke execute on function private.conversations_check_assignee(uuid, uuid, uuid) from public, anon, authenticated;

create function private.conversation_transition_allowed(p_from public.conversation_status, p_to public.conversation_status)
returns boolean
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select p_from = p_to or case p_from
    when 'active'        then p_to in ('waiting_human', 'human', 'resolved', 'closed')
    when 'waiting_human' then p_to in ('active', 'human', 'resolved', 'closed')
    when 'human'         then p_to in ('active', 'waiting_human', 'resolved', 'closed')
    when 'resolved'      then p_to in ('active', 'closed')
    else false -- closed is terminal
  end
$$;
comment on function private.conversation_transition_allowed(public.conversation_status, public.conversation_status) is
  'The conversation state machine: true when a status may change from p_from to p_to (same status always allowed; closed is terminal).';

create function private.conversations_guard_transition()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_chatbot record;
  v_user_id uuid;
  v_role public.user_role;
begin
  -- the caller's membership, only where a rule needs it (not for the per-message update
  -- of the message triggers; issue 11); no JWT subject (service_role, jobs): none to look up
  if tg_op = 'INSERT' or new.assigned_operator_id is distinct from old.assigned_operator_id then
    v_user_id := case when auth.uid() is not null then private.get_current_user_id() end;
    v_role := case when v_user_id is not null then private.get_user_role() end;
  end if;
  if tg_op = 'INSERT' then
    -- Only owner/administrador/supervisor open conversations (policy insert_as_supervisor):
    -- a member of another rank is refused first, with the RLS error, before the chatbot or
    -- the assignee is looked at (an operador would learn an unassigned chatbot's channels
    -- and state, or its assignments, from the checks below). Callers without a membership
    -- were refused by conversations_0_tenant_guard already.
    if v_role not in ('owner', 'administrador', 'supervisor') then
      raise exception using errcode = '42501',
        message = 'new row violates row-level security policy for table "conversations"',
        hint = 'Only owners, administradores and supervisors open conversations.';
    end if;
    select c.is_active, c.channels into v_chatbot
      from public.chatbots c where c.company_id = new.company_id and c.id = new.chatbot_id;
    if found then -- a missing chatbot is reported by the foreign key
      if not v_chatbot.is_active then
        raise exception using errcode = '22023',
          message = format('chatbot %s is inactive and accepts no new conversations', new.chatbot_id),
          hint = 'Activate the chatbot first.';
      end if;
      if not new.channel = any (v_chatbot.channels) then
        raise exception using errcode = '22023',
          message = format('channel %s is not enabled for chatbot %s (enabled: %s)', new.channel, new.chatbot_id, v_chatbot.channels),
          hint = 'Add the channel to chatbots.channels or use an enabled one.';
      end if;
    end if;
    if new.status in ('resolved', 'closed') then
      raise exception using errcode = '22023',
        message = format('a conversation cannot be created in status %s', new.status),
        hint = 'Create it active (or waiting_human/human) and change its status afterwards.';
    end if;
    new.closed_at := null;
    new.last_message_at := null;
    new.bot_turns_without_resolution := 0;
    new.hitl_escalated_at := case when new.status in ('waiting_human', 'human') then now() end;
    perform private.conversations_check_assignee(new.company_id, new.chatbot_id, new.assigned_operator_id);
    return new;
  end if;

  -- UPDATE
  if new.company_id is distinct from old.company_id or new.chatbot_id is distinct from old.chatbot_id
     or new.end_user_id is distinct from old.end_user_id or new.channel is distinct from old.channel
     or new.created_at is distinct from old.created_at then
    raise exception using errcode = '22023',
      message = 'company_id, chatbot_id, end_user_id, channel and created_at of a conversation cannot change',
      hint = 'Start a new conversation instead.';
  end if;

  if new.status is distinct from old.status then
    if not private.conversation_transition_allowed(old.status, new.status) then
      raise exception using errcode = '22023',
        message = format('invalid conversation status transition: %s -> %s', old.status, new.status),
        hint = case when old.status = 'closed'
                    then 'A closed conversation is final; a returning end user starts a new conversation.'
                    else 'Allowed: active->{waiting_human,human,resolved,closed}, waiting_human->{active,human,resolved,closed}, human->{active,waiting_human,resolved,closed}, resolved->{active,closed}.' end;
    end if;
    if new.status = 'closed' then
      new.closed_at := now();
    end if;
    if new.status in ('waiting_human', 'human') and old.status not in ('waiting_human', 'human') then
      -- private.escalate_conversation stamps the entry with the time of the escalation row it
      -- wrote (a time inside this transaction; members cannot write the column); every
      -- other entry, and any other time, is stamped now()
      if new.hitl_escalated_at is not distinct from old.hitl_escalated_at
         or not (new.hitl_escalated_at between now() and clock_timestamp()) then
        new.hitl_escalated_at := now();
      end if;
    end if;
    if new.status = 'waiting_human' and old.status = 'human' then
      new.assigned_operator_id := null; -- released back to the queue
    end if;
    if new.status in ('active', 'resolved', 'waiting_human', 'human') and old.status is distinct from new.status
       and not (new.status in ('waiting_human', 'human') and old.status in ('waiting_human', 'human')) then
      new.bot_turns_without_resolution := 0;
    end if;
  end if;

  if new.assigned_operator_id is distinct from old.assigned_operator_id then
    if v_role = 'operador' and new.assigned_operator_id is distinct from v_user_id and new.assigned_operator_id is not null then
      raise exception using errcode = '42501',
        message = 'an operador can only assign a conversation to itself',
        hint = 'Ask a supervisor to assign the conversation to someone else.';
    end if;
    perform private.conversations_check_assignee(new.company_id, new.chatbot_id, new.assigned_operator_id);
  end if;
  return new;
end
$$;
comment on function private.conversations_guard_transition() is
  'Trigger: refuses a new conversation from a caller the insert policy refuses (42501, the RLS error, before any lookup); '
  'validates new conversations (active chatbot, enabled channel, open status) and status transitions (22023); '
  'maintains closed_at, hitl_escalated_at and the bot turn counter; validates the assigned operator.';
revoke execute on function private.conversations_guard_transition() from public, anon, authenticated;

create trigger conversations_guard_insert
  before insert on public.conversations
  for each row execute function private.conversations_guard_transition();
comment on trigger conversations_guard_insert on public.conversations is 'Invariants of a new conversation (who opens it, chatbot, channel, status).';

-- (when: only an update of a column the state machine guards runs the function; the
-- per-message update of the message trigger, which keeps last_message_at and the turn
-- counter, calls nothing - issue 11. The column list: an update that does not name one of
-- those columns cannot change them (this trigger runs before every other that could), so
-- it skips the trigger before its WHEN clause is even planned, which every statement does
-- again; the messages' activity update names none - issue 21)
create trigger conversations_guard_transition
  before update of status, assigned_operator_id, company_id, chatbot_id, end_user_id, channel, created_at
  on public.conversations
  for each row
  when (new.status is distinct from old.status
        or new.assigned_operator_id is distinct from old.assigned_operator_id
        or new.company_id is distinct from old.company_id or new.chatbot_id is distinct from old.chatbot_id
        or new.end_user_id is distinct from old.end_user_id or new.channel is distinct from old.channel
        or new.created_at is distinct from old.created_at)
  execute function private.conversations_guard_transition();
comment on trigger conversations_guard_transition on public.conversations is
  'Conversation state machine and invariants: fires on an update of status, assignee or an immutable column.';

-- (when: an update that already set updated_at to the transaction time, as the message
-- trigger's per-message update does, needs no call; issue 11)
create trigger conversations_touch_updated_at
  before update on public.conversations
  for each row when (new.updated_at is distinct from now())
  execute function private.touch_updated_at();
comment on trigger conversations_touch_updated_at on public.conversations is 'Keeps updated_at current (the transaction time of the latest update).';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.conversations') }}

-- A member can be removed while the history stays (private.clear_user_reference).
create trigger users_clear_conversations_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.conversations', 'assigned_operator_id');
comment on trigger users_clear_conversations_references on public.users is
  'Clears conversations.assigned_operator_id (the conversation goes back to unassigned) before a member is deleted.';
