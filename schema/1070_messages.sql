-- Why: the transcript of a conversation (seed section 3, "Messages"). Each insert, in its
-- own transaction: counts usage against the plan (1060), enforces who may write what
-- (staff write only operator messages, and only while the conversation is in human mode),
-- keeps the conversation's activity/turn counters, and runs the per-chatbot HITL triggers.
-- chatbot_id is denormalised so operador policies need no per-row subquery; the composite
-- FK to conversations (company_id, id, chatbot_id) keeps it equal to the conversation's.

{% from 'schema/_tenant_guard.sql' import tenant_guard -%}
create table public.messages (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  conversation_id uuid not null,
  chatbot_id uuid not null,
  sender_type public.message_sender_type not null,
  sender_id uuid,
  content text not null,
  processing_time_ms integer,
  token_count integer,
  created_at timestamptz not null default now(),
  constraint messages_pkey primary key (company_id, id),
  constraint messages_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  -- target of the message_reactions FK that pins a reaction's conversation/chatbot
  constraint messages_id_conversation_key unique (company_id, id, conversation_id, chatbot_id),
  constraint messages_conversation_fkey foreign key (company_id, conversation_id, chatbot_id)
    references public.conversations (company_id, id, chatbot_id) on delete cascade,
  constraint messages_sender_fkey foreign key (company_id, sender_id)
    references public.users (company_id, id) on delete no action,
  constraint messages_content_length_check check (char_length(content) between 1 and 32000),
  constraint messages_sender_id_check check (sender_id is null or sender_type = 'operator'),
  constraint messages_processing_time_ms_check check (processing_time_ms >= 0),
  constraint messages_token_count_check check (token_count >= 0)
);

comment on table public.messages is
  'Messages of conversations (tenant table, append-only for clients). Owner/administrador/supervisor read all of the company, operador those of assigned chatbots; '
  'staff insert only operator messages, as themselves, while the conversation is in human mode. Bot messages count against the monthly plan limit.';
comment on column public.messages.company_id is 'Owning company (tenant key).';
comment on column public.messages.id is 'Message id.';
comment on column public.messages.conversation_id is 'Conversation the message belongs to; must be open (not closed).';
comment on column public.messages.chatbot_id is 'Chatbot of the conversation, filled from it when omitted; a mismatch is rejected by the foreign key.';
comment on column public.messages.sender_type is 'Who wrote it: end_user, bot, operator or system. Authenticated users may only write operator messages.';
comment on column public.messages.sender_id is 'The operator''s public.users.id for operator messages (forced to the caller for authenticated users); null for every other sender type.';
comment on column public.messages.content is 'Message text, 1-32000 characters.';
comment on column public.messages.processing_time_ms is 'Time the bot took to produce the answer, milliseconds (>= 0); null when not measured.';
comment on column public.messages.token_count is 'Language-model tokens used for the message (>= 0); null when not applicable.';
comment on column public.messages.created_at is 'When the message was written, as reported by the writer (default now(); the backend may set the channel''s time). Reported time only: nothing billed, limited or deleted is timed by it (usage is counted in the server''s current month, retention ages conversations by closed_at); analytics days group by it.';

-- One trigger for the whole write path (issue 11: the separate AFTER trigger cost a second
-- function call, an after-trigger event and a second look-up of the conversation per
-- message). Everything happens before the row is stored; a row refused later (a check
-- constraint, a foreign key) rolls all of it back with the statement.
create function private.messages_before_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  -- no JWT subject (service_role, jobs): no membership to look up (issue 11: the three
  -- context lookups were a fifth of the trigger time of every backend-written message)
  v_user_id uuid := case when auth.uid() is not null then private.get_current_user_id() end;
  v_role public.user_role;
  v_operador boolean := false;
  v_assigned uuid[];
  v_conv record;
  v_text text;
  v_match text;
begin
  if v_user_id is not null then
    -- an application user (authenticated): check tenancy and assignment before anything
    -- else, so nothing about other tenants' or unassigned conversations leaks via errors
    v_role := private.get_user_role();
    v_operador := v_role = 'operador';
    if v_operador then
      v_assigned := private.get_assigned_chatbot_ids();
    end if;
    if new.company_id is distinct from private.get_user_company_id() then
      raise exception using errcode = '42501',
        message = 'new row violates row-level security policy for table "messages"',
        hint = 'Messages can only be written in conversations of your own company.';
    end if;
    if new.sender_type is distinct from 'operator' then
      raise exception using errcode = '42501',
        message = format('users can only write operator messages, not %s messages', new.sender_type),
        hint = 'End-user, bot and system messages are written by the backend (service_role).';
    end if;
    new.sender_id := v_user_id;
  end if;

  -- Usage first, before any row lock: the sharded usage counters (1060) wait for other
  -- sessions only here, while this one holds nothing they could be waiting for (the
  -- conversation row below), so single-message transactions cannot deadlock. A message
  -- refused further down rolls its count back with it.
  perform private.record_message_usage(new.company_id, new.sender_type = 'bot');

  if new.sender_type = 'operator' then
    -- An operador sees only the conversations of its assigned chatbots: any other one is,
    -- for it, a conversation that does not exist. The lookup filters on visibility, so
    -- nothing is read (or locked) before access is known, and an invisible conversation -
    -- closed, in human or bot mode, missing or another company's - gets no status check:
    -- the row goes on untouched (chatbot_id not filled) and RLS or the foreign key refuses
    -- it, exactly as for a conversation that exists nowhere.
    select c.chatbot_id, c.status, c.is_hitl_active into v_conv
      from public.conversations c
     where c.company_id = new.company_id and c.id = new.conversation_id
       and (not v_operador or c.chatbot_id = any (v_assigned))
       for no key update; -- serialises messages of one conversation
    if not found and v_operador then
      return new;
    end if;
    if not found then
      perform private.messages_refuse_conversation(new.company_id, new.conversation_id);
    end if;
    new.chatbot_id := coalesce(new.chatbot_id, v_conv.chatbot_id);
    if v_operador and not coalesce(new.chatbot_id = any (v_assigned), false) then
      raise exception using errcode = '42501',
        message = 'new row violates row-level security policy for table "messages"',
        hint = 'An operador can only write in conversations of chatbots assigned to it.';
    end if;
    if v_conv.status = 'closed' then
      perform private.messages_refuse_conversation(new.company_id, new.conversation_id);
    end if;
    if not v_conv.is_hitl_active then
      raise exception using errcode = '42501',
        message = format('operator messages can only be written while the conversation is in human mode (conversation %s is %s)',
                         new.conversation_id, v_conv.status),
        hint = 'Escalate the conversation first (set status to waiting_human or human).';
    end if;
    -- the first operator answer takes the conversation over
    update public.conversations c
       set last_message_at = greatest(c.last_message_at, new.created_at),
           status = case when c.status = 'waiting_human' then 'human' else c.status end,
           assigned_operator_id = coalesce(c.assigned_operator_id, new.sender_id),
           updated_at = pg_catalog.now()
     where c.company_id = new.company_id and c.id = new.conversation_id;
    return new;
  end if;

  -- The backend's messages (service_role: end user, bot, system): one statement locks the
  -- open conversation (serialising its messages: turn counter, status), keeps its activity
  -- and turn counter, and reads the chatbot's escalation settings.
  update public.conversations c
     set last_message_at = greatest(c.last_message_at, new.created_at),
         -- an end user coming back reopens a resolved conversation
         status = case when new.sender_type = 'end_user' and c.status = 'resolved' then 'active'
                       else c.status end,
         -- a bot answer in bot mode is one more turn without resolution
         bot_turns_without_resolution = c.bot_turns_without_resolution
                                        + case when new.sender_type = 'bot' and c.status = 'active' then 1 else 0 end,
         updated_at = pg_catalog.now()
    from public.chatbots b
   where c.company_id = new.company_id and c.id = new.conversation_id and c.status <> 'closed'
     and b.company_id = c.company_id and b.id = c.chatbot_id
  returning c.chatbot_id, c.status, c.bot_turns_without_resolution as turns, b.hitl_enabled,
            b.hitl_keywords, b.hitl_keywords_normalized, b.hitl_human_request_phrases,
            b.hitl_human_request_phrases_normalized, b.hitl_max_bot_turns
       into v_conv;
  if not found then
    perform private.messages_refuse_conversation(new.company_id, new.conversation_id);
  end if;
  new.chatbot_id := coalesce(new.chatbot_id, v_conv.chatbot_id);
  -- The bot stays silent while a human has the conversation (HITL).
  if new.sender_type = 'bot' and v_conv.status in ('waiting_human', 'human') then
    raise exception using errcode = 'NA003',
      message = format('the bot cannot answer conversation %s: a human has it (status %s)',
                       new.conversation_id, v_conv.status),
      hint = 'Drop the bot answer: read is_hitl_active after writing the end user''s message, and answer only while it is false.';
  end if;

  -- Automatic escalation (HITL) of a conversation in bot mode, by the chatbot's settings.
  if not v_conv.hitl_enabled or v_conv.status <> 'active' then
    return new;
  end if;
  if new.sender_type = 'end_user' then
    -- the text is normalised once for both lists; the phrases were when the chatbot was written
    v_text := private.normalize_phrase(new.content);
    v_match := private.match_phrase(v_text, v_conv.hitl_human_request_phrases,
                                     v_conv.hitl_human_request_phrases_normalized);
    if v_match is not null then
      perform private.escalate_conversation(new.company_id, new.conversation_id, 'human_request',
                                            format('end user asked for a human: "%s"', v_match));
    else
      v_match := private.match_phrase(v_text, v_conv.hitl_keywords, v_conv.hitl_keywords_normalized);
      if v_match is not null then
        perform private.escalate_conversation(new.company_id, new.conversation_id, 'keyword',
                                              format('keyword "%s" in end-user message', v_match));
      end if;
    end if;
  elsif new.sender_type = 'bot' and v_conv.turns >= v_conv.hitl_max_bot_turns then
    perform private.escalate_conversation(new.company_id, new.conversation_id, 'bot_turns',
                                          format('%s bot turns without resolution (limit %s)',
                                                 v_conv.turns, v_conv.hitl_max_bot_turns));
  end if;
  return new;
end
$$;
comment on function private.messages_before_insert() is
  'Trigger (the whole message write path, before the row is stored): authenticated callers may only write operator messages as themselves in their company/assigned chatbots (42501; '
  'a conversation an operador cannot see fails exactly like one that does not exist: RLS or the foreign key answers); '
  'no messages in closed conversations (22023); operator messages only in human mode (42501); no bot messages while a human has the conversation (NA003); counts usage (NA001 at the plan limit); '
  'keeps the conversation''s last_message_at, turn counter and status (an end user reopens a resolved conversation, the first operator answer takes a waiting one over) '
  'and escalates a bot-mode conversation on a human-request phrase or keyword (end-user messages) or at hitl_max_bot_turns (bot messages).';
revoke execute on function private.messages_before_insert() from public, anon, authenticated;

create trigger messages_before_insert
  before insert on public.messages
  for each row execute function private.messages_before_insert();
comment on trigger messages_before_insert on public.messages is
  'The message write path: write rules, monthly usage, conversation bookkeeping and HITL escalation.';

-- The error for a message whose conversation cannot take it, looked up only once the
-- write path found no open conversation (a rare path: the common one reads nothing extra).
create function private.messages_refuse_conversation(p_company_id uuid, p_conversation_id uuid)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select 1 from public.conversations c
              where c.company_id = p_company_id and c.id = p_conversation_id and c.status = 'closed') then
    raise exception using errcode = '22023',
      message = format('conversation %s is closed and accepts no messages', p_conversation_id),
      hint = 'A returning end user starts a new conversation.';
  end if;
  raise exception using errcode = '23503',
    message = format('conversation %s does not exist in company %s', p_conversation_id, p_company_id),
    hint = 'A message must reference a conversation of the same company.';
end
$$;
comment on function private.messages_refuse_conversation(uuid, uuid) is
  'Raises the error for a message whose conversation is closed (22023) or does not exist in the company (23503); never returns. Called by messages_before_insert.';
revoke execute on function private.messages_refuse_conversation(uuid, uuid) from public, anon, authenticated;

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.messages') }}

-- A member can be removed while the history stays (private.clear_user_reference).
create trigger users_clear_messages_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.messages', 'sender_id');
comment on trigger users_clear_messages_references on public.users is
  'Clears messages.sender_id (the message stays, authorless) before a member is deleted.';
