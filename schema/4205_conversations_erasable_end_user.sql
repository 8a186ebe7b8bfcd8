-- Why: domain conversations, object private.conversations_guard_transition (supersedes the
-- definition of schema/1040_conversations.sql). End-user erasure (functions/4210) redacts
-- conversations.end_user_id to 'erased'; the identity check refused any change of the
-- column. Now it refuses every change but that one (the rest of the function is unchanged).

create or replace function private.conversations_guard_transition()
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
  -- end_user_id changes only to 'erased': the redaction of public.erase_end_user
  -- (functions/4210_erase_end_user.sql), which removes the identity and nothing else
  if new.company_id is distinct from old.company_id or new.chatbot_id is distinct from old.chatbot_id
     or (new.end_user_id is distinct from old.end_user_id and new.end_user_id <> 'erased')
     or new.channel is distinct from old.channel
     or new.created_at is distinct from old.created_at then
    raise exception using errcode = '22023',
      message = 'company_id, chatbot_id, end_user_id, channel and created_at of a conversation cannot change',
      hint = 'Start a new conversation instead (end_user_id changes only to ''erased'', by public.erase_end_user).';
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
  'maintains closed_at, hitl_escalated_at and the bot turn counter; validates the assigned operator. '
  'The identity columns never change, but end_user_id may become ''erased'' (end-user erasure, public.erase_end_user).';
