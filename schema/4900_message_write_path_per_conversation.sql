-- Why: domain chatbots and conversations, objects private.messages_bookkeeping (supersedes
-- the definition of schema/1070_messages.sql) and private.messages_after_insert (supersedes
-- the definition of functions/4400_tenant_import_mode.sql). Speed of the message write
-- path (issue 21, docs/performance.md "Third round"); every rule unchanged.
--
-- Profiled (perf with call graphs on the backend of one connection, pg_stat_user_functions,
-- CPU time per statement): a single message spent a quarter of its statement in the
-- conversation update, a statement built for any number of conversations (unnest of the
-- rows, a sort and an aggregate, a subquery scan, two joins, a cursor over its RETURNING),
-- whose executor start alone cost about as much as a plain keyed update. Now the
-- statement's messages are summed per conversation first (one message: read from the row,
-- no query; several: one aggregate query), and each conversation is one keyed UPDATE with
-- the sums as values, its RETURNING read into variables (no cursor). The rules, their
-- order (per company: usage first, then its conversations in id order) and their errors
-- are those of schema/1070; a batch over several conversations makes one update per
-- conversation instead of one per company (in id order: the same lock order).
-- messages_after_insert tests the import-mode setting before calling
-- private.tenant_import_mode() (a superset: the function still decides), so an ordinary
-- statement calls nothing for it.

create or replace function private.messages_bookkeeping(p_rows private.stored_message[])
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_n integer := coalesce(pg_catalog.cardinality(p_rows), 0);
  -- the statement's messages per conversation, in (company, conversation) id order: the
  -- company, the conversation, its newest created_at, its messages by sender type, all of
  -- them, its first operator (in order) and its end-user texts joined in order
  v_company uuid[];
  v_conv uuid[];
  v_last timestamptz[];
  v_bots bigint[];
  v_ends bigint[];
  v_ops bigint[];
  v_all bigint[];
  v_op uuid[];
  v_joined text[];
  v_first integer := 1;
  -- one conversation's values as plain variables: on profile citus a statement of a shard
  -- trigger is routed by its company_id = <value>, which must be a parameter, not an expression
  v_c uuid;
  v_id uuid;
  v_at timestamptz;
  v_b bigint;
  v_e bigint;
  v_o bigint;
  v_last_of integer;
  v_billable bigint;
  v_total bigint;
  v_month date;
  v_status public.conversation_status;
  v_assignee uuid;
  v_turns integer;
  v_hitl boolean;
  v_keywords text[];
  v_keywords_n text[];
  v_phrases text[];
  v_phrases_n text[];
  v_max_turns integer;
  v_texts text[];
  v_text text;
  v_match text;
  v_reason public.hitl_escalation_reason;
  v_detail text;
begin
  if v_n = 0 then
    return; -- nothing stored (every row skipped by on conflict do nothing)
  end if;
  if v_n = 1 then
    -- one message (the common case): read from the row, no query
    v_company := array[(p_rows[1]).company_id];
    v_conv := array[(p_rows[1]).conversation_id];
    v_last := array[(p_rows[1]).created_at];
    v_bots := array[((p_rows[1]).sender_type = 'bot')::int::bigint];
    v_ends := array[((p_rows[1]).sender_type = 'end_user')::int::bigint];
    v_ops := array[((p_rows[1]).sender_type = 'operator')::int::bigint];
    v_all := '{1}';
    v_op := array[case when (p_rows[1]).sender_type = 'operator' then (p_rows[1]).sender_id end];
    v_joined := array[case when (p_rows[1]).sender_type = 'end_user' then (p_rows[1]).content end];
  else
    select pg_catalog.array_agg(g.company_id order by g.company_id, g.conversation_id),
           pg_catalog.array_agg(g.conversation_id order by g.company_id, g.conversation_id),
           pg_catalog.array_agg(g.last_at order by g.company_id, g.conversation_id),
           pg_catalog.array_agg(g.bots order by g.company_id, g.conversation_id),
           pg_catalog.array_agg(g.end_users order by g.company_id, g.conversation_id),
           pg_catalog.array_agg(g.operators order by g.company_id, g.conversation_id),
           pg_catalog.array_agg(g.total order by g.company_id, g.conversation_id),
           pg_catalog.array_agg(g.operator_id order by g.company_id, g.conversation_id),
           pg_catalog.array_agg(g.joined order by g.company_id, g.conversation_id)
      into v_company, v_conv, v_last, v_bots, v_ends, v_ops, v_all, v_op, v_joined
      from (select r.company_id, r.conversation_id,
                   pg_catalog.max(r.created_at) as last_at,
                   pg_catalog.count(*) filter (where r.sender_type = 'bot') as bots,
                   pg_catalog.count(*) filter (where r.sender_type = 'end_user') as end_users,
                   pg_catalog.count(*) filter (where r.sender_type = 'operator') as operators,
                   pg_catalog.count(*) as total,
                   (pg_catalog.array_agg(r.sender_id order by r.created_at)
                      filter (where r.sender_type = 'operator' and r.sender_id is not null))[1] as operator_id,
                   pg_catalog.string_agg(r.content, ' ' order by r.created_at, r.n)
                      filter (where r.sender_type = 'end_user') as joined
              from pg_catalog.unnest(p_rows) with ordinality as r (company_id, conversation_id, sender_type,
                                                                   sender_id, content, created_at, n)
             group by r.company_id, r.conversation_id) g;
  end if;

  while v_first <= pg_catalog.cardinality(v_conv) loop
    -- this company's conversations are v_first .. v_last_of; its usage first (1060), before
    -- any of its conversations is locked, so that single-statement transactions cannot
    -- deadlock on the usage counters
    v_last_of := v_first;
    v_billable := v_bots[v_first];
    v_total := v_all[v_first];
    while v_last_of < pg_catalog.cardinality(v_conv) and v_company[v_last_of + 1] = v_company[v_first] loop
      v_last_of := v_last_of + 1;
      v_billable := v_billable + v_bots[v_last_of];
      v_total := v_total + v_all[v_last_of];
    end loop;
    v_c := v_company[v_first];
    v_month := private.record_message_usage(v_c, v_billable, v_total); -- an assignment: no query

    for k in v_first .. v_last_of loop
      v_c := v_company[k];
      v_id := v_conv[k];
      v_at := v_last[k];
      v_b := v_bots[k];
      v_e := v_ends[k];
      v_o := v_ops[k];
      -- The conversation's activity and turn counter, in conversation id order (the lock
      -- order of every statement); a conversation that cannot take its messages is not
      -- updated. It names no state column (status, assignee), so the state machine's
      -- triggers, which fire on those columns, do not run for it; the rare state change (an
      -- end user reopening a resolved conversation, the first operator answer taking a
      -- waiting one over) is a second update of that conversation below.
      update public.conversations c
         set last_message_at = greatest(c.last_message_at, v_at),
             -- a bot answer in bot mode is one more turn without resolution
             bot_turns_without_resolution = c.bot_turns_without_resolution
                                            + case when c.status = 'active' then v_b else 0 end,
             updated_at = pg_catalog.now()
        from public.chatbots b
       where c.company_id = v_c and c.id = v_id
         and b.company_id = v_c and b.id = c.chatbot_id
         -- closed accepts nothing; the bot is silent while a human has the conversation;
         -- operators write only in human mode
         and c.status <> 'closed'
         and (v_b = 0 or not c.is_hitl_active)
         and (v_o = 0 or c.is_hitl_active)
      returning c.status, c.assigned_operator_id, c.bot_turns_without_resolution, b.hitl_enabled, b.hitl_keywords,
                b.hitl_keywords_normalized, b.hitl_human_request_phrases, b.hitl_human_request_phrases_normalized,
                b.hitl_max_bot_turns
           into v_status, v_assignee, v_turns, v_hitl, v_keywords, v_keywords_n, v_phrases, v_phrases_n, v_max_turns;
      if not found then
        -- a conversation that could not take its messages: say why (the whole statement fails)
        select c.status into v_status from public.conversations c
         where c.company_id = v_c and c.id = v_id;
        if v_status is null or v_status = 'closed' then
          perform private.messages_refuse_conversation(v_c, v_id);
        end if;
        if v_b > 0 then
          raise exception using errcode = 'NA003',
            message = format('the bot cannot answer conversation %s: a human has it (status %s)', v_id, v_status),
            hint = 'Drop the bot answer: read is_hitl_active after writing the end user''s message, and answer only while it is false.';
        end if;
        raise exception using errcode = '42501',
          message = format('operator messages can only be written while the conversation is in human mode (conversation %s is %s)',
                           v_id, v_status),
          hint = 'Escalate the conversation first (set status to waiting_human or human).';
      end if;
      -- an end user coming back reopens a resolved conversation; the first operator answer
      -- takes a waiting one over, assigned to that operator (the first in order)
      if (v_e > 0 and v_status = 'resolved')
         or (v_o > 0 and (v_status = 'waiting_human' or v_assignee is null)) then
        update public.conversations c
           set status = case when v_e > 0 and c.status = 'resolved' then 'active'
                             when v_o > 0 and c.status = 'waiting_human' then 'human'
                             else c.status end,
               assigned_operator_id = coalesce(c.assigned_operator_id, v_op[k])
         where c.company_id = v_c and c.id = v_id
        returning c.status into v_status;
      end if;
      -- Automatic escalation (HITL) of a conversation in bot mode, by the chatbot's settings:
      -- the first end-user message (in order) with a human-request phrase or a keyword, else
      -- the bot turns reaching the limit.
      continue when not v_hitl or v_status <> 'active';
      v_reason := null;
      if v_joined[k] is not null then
        -- A necessary condition first, with one text for the whole statement: no phrase of
        -- either list occurs in the texts joined (a phrase that only spans two texts is
        -- checked for nothing, message by message below). One message: that is its check.
        v_text := private.normalize_phrase(v_joined[k]);
        if private.match_phrase(v_text, v_phrases, v_phrases_n) is not null
           or private.match_phrase(v_text, v_keywords, v_keywords_n) is not null then
          if v_e = 1 then
            v_texts := array[v_joined[k]];
          else
            select pg_catalog.array_agg(r.content order by r.created_at, r.n) into v_texts
              from pg_catalog.unnest(p_rows) with ordinality as r (company_id, conversation_id, sender_type,
                                                                   sender_id, content, created_at, n)
             where r.company_id = v_c and r.conversation_id = v_id and r.sender_type = 'end_user';
          end if;
          foreach v_text in array v_texts loop
            -- the text is normalised once for both lists; the phrases were when the chatbot was written
            v_text := private.normalize_phrase(v_text);
            v_match := private.match_phrase(v_text, v_phrases, v_phrases_n);
            if v_match is not null then
              v_reason := 'human_request';
              v_detail := format('end user asked for a human: "%s"', v_match);
              exit;
            end if;
            v_match := private.match_phrase(v_text, v_keywords, v_keywords_n);
            if v_match is not null then
              v_reason := 'keyword';
              v_detail := format('keyword "%s" in end-user message', v_match);
              exit;
            end if;
          end loop;
        end if;
      end if;
      if v_reason is null and v_b > 0 and v_turns >= v_max_turns then
        v_reason := 'bot_turns';
        v_detail := format('%s bot turns without resolution (limit %s)', v_turns, v_max_turns);
      end if;
      if v_reason is not null then
        perform private.escalate_conversation(v_c, v_id, v_reason, v_detail);
      end if;
    end loop;
    v_first := v_last_of + 1;
  end loop;
end
$$;
comment on function private.messages_bookkeeping(private.stored_message[]) is
  'The write path of the messages one statement stored, once per statement (issue 21): counts usage per company (NA001 at the plan limit: the whole statement is refused); '
  'keeps each conversation''s last_message_at, bot turn counter and status (an end user reopens a resolved conversation, the first operator answer takes a waiting one over, assigned to that operator); '
  'refuses messages in closed conversations (22023), bot messages while a human has the conversation (NA003) and operator messages outside human mode (42501); '
  'escalates a bot-mode conversation on a human-request phrase or keyword of an end-user message (the first in order) or at hitl_max_bot_turns. '
  'Every rule sees the conversation as it was before the statement. One keyed update per conversation, in (company, conversation) id order (schema/4900).';

create or replace function private.messages_after_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- the setting first (a superset, no call): private.tenant_import_mode() decides
  -- doctor: allow setting.read neurant.tenant_import only a cheaper test before private.tenant_import_mode(), which decides (and refuses a session that is not the schema owner's, 42501)
  if coalesce(pg_catalog.current_setting('neurant.tenant_import', true), '') <> '' and private.tenant_import_mode() then
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
