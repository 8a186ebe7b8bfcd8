-- Why: undoes 4900_message_write_path_per_conversation.sql: private.messages_bookkeeping as
-- schema/1070_messages.sql defines it (one update per company over its conversations) and
-- private.messages_after_insert as functions/4400_tenant_import_mode.sql defines it.

create or replace function private.messages_bookkeeping(p_rows private.stored_message[])
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

create or replace function private.messages_after_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;{% if profile == 'citus' %}
  perform private.messages_bookkeeping(array[row(new.company_id, new.conversation_id, new.sender_type, new.sender_id,
                                                 new.content, new.created_at)::private.stored_message]);{% else %}
  perform private.messages_bookkeeping(array(
    select row(n.company_id, n.conversation_id, n.sender_type, n.sender_id, n.content, n.created_at)::private.stored_message
      from stored n));{% endif %}
  return null;
end
$$;
