-- Why: the transcript of a conversation (seed section 3, "Messages"). Each insert, in its
-- own transaction: enforces who may write what (staff write only operator messages, and
-- only while the conversation is in human mode), and, once per statement over the rows it
-- stored, counts usage against the plan (1060), keeps the conversation's activity/turn
-- counters and runs the per-chatbot HITL triggers.
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

-- The write path in two parts (issue 21). Before a row is stored, only what the row itself
-- needs: who may write it (an application user writes operator messages only, as itself,
-- in its company and, for an operador, its assigned chatbots) and its chatbot_id when
-- omitted. Everything a message changes elsewhere - usage against the plan, the
-- conversation's activity, turn counter and status, HITL escalation - happens once per
-- statement, over the rows the statement actually stored (private.messages_bookkeeping):
-- a redelivered message that `on conflict do nothing` skips changes nothing, and a batch
-- of 20 messages costs one usage count and one conversation update, not 20.
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
  v_operador boolean := false;
  v_assigned uuid[];
  v_chatbot_id uuid;
begin
  if v_user_id is not null then
    -- an application user (authenticated): check tenancy and assignment before anything
    -- else, so nothing about other tenants' or unassigned conversations leaks via errors
    v_operador := private.get_user_role() = 'operador';
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
  if new.chatbot_id is not null and not v_operador then
    return new;
  end if;
  -- An operador sees only the conversations of its assigned chatbots: any other one is, for
  -- it, a conversation that does not exist. The lookup filters on visibility, so an
  -- invisible conversation - closed, in human or bot mode, missing or another company's -
  -- gets no check at all: the row goes on untouched (chatbot_id not filled) and RLS or the
  -- foreign key refuses it, exactly as for a conversation that exists nowhere.
  select c.chatbot_id into v_chatbot_id
    from public.conversations c
   where c.company_id = new.company_id and c.id = new.conversation_id
     and (not v_operador or c.chatbot_id = any (v_assigned));
  if not found and v_operador then
    return new;
  end if;
  if not found then
    perform private.messages_refuse_conversation(new.company_id, new.conversation_id);
  end if;
  new.chatbot_id := coalesce(new.chatbot_id, v_chatbot_id);
  if v_operador and not coalesce(new.chatbot_id = any (v_assigned), false) then
    raise exception using errcode = '42501',
      message = 'new row violates row-level security policy for table "messages"',
      hint = 'An operador can only write in conversations of chatbots assigned to it.';
  end if;
  return new;
end
$$;
comment on function private.messages_before_insert() is
  'Trigger (before a message row is stored): authenticated callers may only write operator messages as themselves in their company/assigned chatbots (42501; '
  'a conversation an operador cannot see fails exactly like one that does not exist: RLS or the foreign key answers); fills chatbot_id from the conversation when omitted '
  '(23503 for a conversation that does not exist). The rest of the write path runs once per statement: private.messages_bookkeeping.';
revoke execute on function private.messages_before_insert() from public, anon, authenticated;

-- (when: a backend write that names its chatbot, the common case, calls nothing). The
-- clause tests the JWT settings auth.uid() reads, not auth.uid() itself: a trigger's WHEN
-- clause is planned again by every statement, and planning inlines the SQL function
-- auth.uid() - parses its text - each time (issue 21: a tenth of a backend insert's CPU).
-- It fires whenever a subject may be set (a superset); the function decides by auth.uid().
create trigger messages_before_insert
  before insert on public.messages
  for each row when (new.chatbot_id is null
                     or pg_catalog.current_setting('request.jwt.claims', true) <> ''
                     or pg_catalog.current_setting('request.jwt.claim.sub', true) <> '')
  execute function private.messages_before_insert();
comment on trigger messages_before_insert on public.messages is
  'Who may write a message (application users: operator messages only, as themselves) and its chatbot_id when omitted; fires for rows without chatbot_id and whenever JWT claims are set (auth.uid() decides inside).';

-- A stored message as its bookkeeping sees it: the columns the rules read.
create type private.stored_message as (
  company_id uuid,
  conversation_id uuid,
  sender_type public.message_sender_type,
  sender_id uuid,
  content text,
  created_at timestamptz
);
comment on type private.stored_message is
  'A message one statement stored, as private.messages_bookkeeping reads it (the trigger of public.messages hands it the statement''s rows).';

-- The rules of a message beyond its own row, applied to one statement's stored messages at
-- once (one definition for every profile: statement triggers hand it the transition
-- table, profile citus - which has no transition tables on distributed tables - one row
-- at a time). Per company: usage first (1060), before any conversation lock, so that
-- single-statement transactions cannot deadlock on the usage counters; then one UPDATE of
-- the statement's conversations, which also proves each may take its messages. A
-- statement is one step: every rule sees the conversation as it was before the statement,
-- and an escalation its messages cause applies after them.
create function private.messages_bookkeeping(p_rows private.stored_message[])
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_one boolean := pg_catalog.cardinality(p_rows) = 1; -- the common case, read without a query
  v_companies uuid[];
  v_bots bigint[];
  v_totals bigint[];
  v_company uuid;
  v_month date;
  v_conversations uuid[];
  v_done uuid[] := '{}';
  v_conv record;
  v_texts text[];
  v_text text;
  v_match text;
  v_reason public.hitl_escalation_reason;
  v_detail text;
begin
  if coalesce(pg_catalog.cardinality(p_rows), 0) = 0 then
    return; -- nothing stored (every row skipped by on conflict do nothing)
  end if;
  -- the statement's companies in id order, with their bot messages and messages (one
  -- message: read from the row, no query)
  if v_one then
    v_companies := array[(p_rows[1]).company_id];
    v_bots := array[((p_rows[1]).sender_type = 'bot')::int::bigint];
    v_totals := '{1}';
  else
    select pg_catalog.array_agg(g.company_id order by g.company_id), pg_catalog.array_agg(g.bots order by g.company_id),
           pg_catalog.array_agg(g.total order by g.company_id)
      into v_companies, v_bots, v_totals
      from (select r.company_id, pg_catalog.count(*) filter (where r.sender_type = 'bot') as bots, pg_catalog.count(*) as total
              from pg_catalog.unnest(p_rows) r
             group by r.company_id) g;
  end if;
  for i in 1 .. pg_catalog.cardinality(v_companies) loop
    v_company := v_companies[i];
    v_month := private.record_message_usage(v_company, v_bots[i], v_totals[i]); -- an assignment: no query
    if v_one then
      v_conversations := array[(p_rows[1]).conversation_id];
    else
      select pg_catalog.array_agg(distinct r.conversation_id) into v_conversations
        from pg_catalog.unnest(p_rows) r
       where r.company_id = v_company;
      if pg_catalog.cardinality(v_conversations) > 1 then
        -- several conversations: locked in id order, so two such statements never deadlock
        perform {{ '1 ' if profile == 'citus' }}from public.conversations c
          where c.company_id = v_company and c.id = any (v_conversations) order by c.id for no key update;
      end if;
    end if;
    -- One statement per company keeps every conversation's activity and turn counter; a
    -- conversation that cannot take its messages is not updated. It names no state column
    -- (status, assignee), so the state machine's triggers, which fire on those columns, do
    -- not run for it; the rare state change (an end user reopening a resolved
    -- conversation, the first operator answer taking a waiting one over) is a second
    -- update of that conversation below.
    for v_conv in
      with a as (
        select r.conversation_id,
               pg_catalog.max(r.created_at) as last_at,
               pg_catalog.count(*) filter (where r.sender_type = 'bot') as bots,
               pg_catalog.count(*) filter (where r.sender_type = 'end_user') as end_users,
               pg_catalog.count(*) filter (where r.sender_type = 'operator') as operators,
               (pg_catalog.array_agg(r.sender_id order by r.created_at)
                  filter (where r.sender_type = 'operator' and r.sender_id is not null))[1] as operator_id,
               -- the end-user texts in order, for the escalation phrases
               pg_catalog.array_agg(r.content order by r.created_at, r.n) filter (where r.sender_type = 'end_user') as texts
          from pg_catalog.unnest(p_rows) with ordinality as r (company_id, conversation_id, sender_type,
                                                               sender_id, content, created_at, n)
         where r.company_id = v_company
         group by r.conversation_id)
      update public.conversations c
         set last_message_at = greatest(c.last_message_at, a.last_at),
             -- a bot answer in bot mode is one more turn without resolution
             bot_turns_without_resolution = c.bot_turns_without_resolution
                                            + case when c.status = 'active' then a.bots else 0 end,
             updated_at = pg_catalog.now()
        from a, public.chatbots b
       where c.company_id = v_company and c.id = a.conversation_id
         and b.company_id = v_company and b.id = c.chatbot_id
         -- closed accepts nothing; the bot is silent while a human has the conversation;
         -- operators write only in human mode
         and c.status <> 'closed'
         and (a.bots = 0 or not c.is_hitl_active)
         and (a.operators = 0 or c.is_hitl_active)
      returning c.id, c.status, c.assigned_operator_id, c.bot_turns_without_resolution as turns, a.bots, a.end_users,
                a.operators, a.operator_id, a.texts, b.hitl_enabled, b.hitl_keywords, b.hitl_keywords_normalized, b.hitl_human_request_phrases,
                b.hitl_human_request_phrases_normalized, b.hitl_max_bot_turns
    loop
      v_done := v_done || v_conv.id;
      -- an end user coming back reopens a resolved conversation; the first operator answer
      -- takes a waiting one over, assigned to that operator (the first in order)
      if (v_conv.end_users > 0 and v_conv.status = 'resolved')
         or (v_conv.operators > 0 and (v_conv.status = 'waiting_human' or v_conv.assigned_operator_id is null)) then
        update public.conversations c
           set status = case when v_conv.end_users > 0 and c.status = 'resolved' then 'active'
                             when v_conv.operators > 0 and c.status = 'waiting_human' then 'human'
                             else c.status end,
               assigned_operator_id = coalesce(c.assigned_operator_id, v_conv.operator_id)
         where c.company_id = v_company and c.id = v_conv.id
        returning c.status into v_conv.status;
      end if;
      -- Automatic escalation (HITL) of a conversation in bot mode, by the chatbot's settings:
      -- the first end-user message (in order) with a human-request phrase or a keyword, else
      -- the bot turns reaching the limit.
      continue when not v_conv.hitl_enabled or v_conv.status <> 'active';
      v_reason := null;
      if v_conv.texts is not null then
        v_texts := v_conv.texts;
        -- A necessary condition first, with one text for the whole statement: no phrase of
        -- either list occurs in the texts joined (a phrase that only spans two texts is
        -- checked for nothing, message by message below). One message: that is its check.
        v_text := private.normalize_phrase(pg_catalog.array_to_string(v_texts, ' '));
        if private.match_phrase(v_text, v_conv.hitl_human_request_phrases, v_conv.hitl_human_request_phrases_normalized) is null
           and private.match_phrase(v_text, v_conv.hitl_keywords, v_conv.hitl_keywords_normalized) is null then
          v_texts := '{}';
        end if;
        foreach v_text in array v_texts loop
          -- the text is normalised once for both lists; the phrases were when the chatbot was written
          v_text := private.normalize_phrase(v_text);
          v_match := private.match_phrase(v_text, v_conv.hitl_human_request_phrases,
                                           v_conv.hitl_human_request_phrases_normalized);
          if v_match is not null then
            v_reason := 'human_request';
            v_detail := format('end user asked for a human: "%s"', v_match);
            exit;
          end if;
          v_match := private.match_phrase(v_text, v_conv.hitl_keywords, v_conv.hitl_keywords_normalized);
          if v_match is not null then
            v_reason := 'keyword';
            v_detail := format('keyword "%s" in end-user message', v_match);
            exit;
          end if;
        end loop;
      end if;
      if v_reason is null and v_conv.bots > 0 and v_conv.turns >= v_conv.hitl_max_bot_turns then
        v_reason := 'bot_turns';
        v_detail := format('%s bot turns without resolution (limit %s)', v_conv.turns, v_conv.hitl_max_bot_turns);
      end if;
      if v_reason is not null then
        perform private.escalate_conversation(v_company, v_conv.id, v_reason, v_detail);
      end if;
    end loop;

    if pg_catalog.cardinality(v_done) < pg_catalog.cardinality(v_conversations) then
      -- a conversation that could not take its messages: say why (the whole statement fails)
      for v_conv in
        select r.conversation_id as id, c.status,
               pg_catalog.count(*) filter (where r.sender_type = 'bot') as bots,
               pg_catalog.count(*) filter (where r.sender_type = 'operator') as operators
          from pg_catalog.unnest(p_rows) r
          left join public.conversations c on c.company_id = v_company and c.id = r.conversation_id
         where r.company_id = v_company and r.conversation_id <> all (v_done)
         group by r.conversation_id, c.status
         order by r.conversation_id
      loop
        if v_conv.status is null or v_conv.status = 'closed' then
          perform private.messages_refuse_conversation(v_company, v_conv.id);
        end if;
        if v_conv.bots > 0 then
          raise exception using errcode = 'NA003',
            message = format('the bot cannot answer conversation %s: a human has it (status %s)', v_conv.id, v_conv.status),
            hint = 'Drop the bot answer: read is_hitl_active after writing the end user''s message, and answer only while it is false.';
        end if;
        raise exception using errcode = '42501',
          message = format('operator messages can only be written while the conversation is in human mode (conversation %s is %s)',
                           v_conv.id, v_conv.status),
          hint = 'Escalate the conversation first (set status to waiting_human or human).';
      end loop;
    end if;
    v_done := '{}';
  end loop;
end
$$;
comment on function private.messages_bookkeeping(private.stored_message[]) is
  'The write path of the messages one statement stored, once per statement (issue 21): counts usage per company (NA001 at the plan limit: the whole statement is refused); '
  'keeps each conversation''s last_message_at, bot turn counter and status (an end user reopens a resolved conversation, the first operator answer takes a waiting one over, assigned to that operator); '
  'refuses messages in closed conversations (22023), bot messages while a human has the conversation (NA003) and operator messages outside human mode (42501); '
  'escalates a bot-mode conversation on a human-request phrase or keyword of an end-user message (the first in order) or at hitl_max_bot_turns. '
  'Every rule sees the conversation as it was before the statement.';
revoke execute on function private.messages_bookkeeping(private.stored_message[]) from public, anon, authenticated;

create function private.messages_after_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin{% if profile == 'citus' %}
  perform private.messages_bookkeeping(array[row(new.company_id, new.conversation_id, new.sender_type, new.sender_id,
                                                 new.content, new.created_at)::private.stored_message]);{% else %}
  perform private.messages_bookkeeping(array(
    select row(n.company_id, n.conversation_id, n.sender_type, n.sender_id, n.content, n.created_at)::private.stored_message
      from stored n));{% endif %}
  return null;
end
$$;
comment on function private.messages_after_insert() is
  'Trigger: hands the messages a statement stored to private.messages_bookkeeping{{ " (profile citus: one row at a time; Citus has no transition tables on distributed tables)" if profile == "citus" }}.';
revoke execute on function private.messages_after_insert() from public, anon, authenticated;

create trigger messages_after_insert
  after insert on public.messages{% if profile == 'citus' %}
  for each row{% else %}
  referencing new table as stored
  for each statement{% endif %}
  execute function private.messages_after_insert();
comment on trigger messages_after_insert on public.messages is
  'The bookkeeping of the messages a statement stored (usage, conversation activity and state, HITL escalation): rows skipped by on conflict do nothing count nothing.';

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
