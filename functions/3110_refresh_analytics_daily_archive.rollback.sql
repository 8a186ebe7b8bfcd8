-- Why: undoes 3110_refresh_analytics_daily_archive.sql: restores the roll-up of
-- 2120_refresh_analytics_daily.sql (live tables only), verbatim.

create or replace procedure public.refresh_analytics_daily(p_day date)
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_from timestamptz;
  v_to   timestamptz;
begin
  if p_day is null then
    raise exception using errcode = '22023',
      message = 'p_day is required',
      hint = 'Pass the UTC day to roll up, e.g. current_date - 1.';
  end if;
  v_from := p_day::timestamp at time zone 'UTC';
  v_to   := (p_day + 1)::timestamp at time zone 'UTC';

  if to_regclass('pg_temp.analytics_daily_rollup') is null then
    create temporary table analytics_daily_rollup (
      company_id uuid, chatbot_id uuid, conversations_count integer, new_conversations_count integer,
      messages_count integer, end_user_messages_count integer, bot_messages_count integer,
      operator_messages_count integer, hitl_escalations integer, avg_processing_time_ms numeric(12, 2),
      positive_reactions integer, negative_reactions integer, knowledge_queries_count integer
    ) on commit drop;
  end if;
  truncate pg_temp.analytics_daily_rollup;

  insert into pg_temp.analytics_daily_rollup
  with msg as (
    select m.company_id, m.chatbot_id,
           count(*)::integer as messages_count,
           count(*) filter (where m.sender_type = 'end_user')::integer as end_user_messages_count,
           count(*) filter (where m.sender_type = 'bot')::integer as bot_messages_count,
           count(*) filter (where m.sender_type = 'operator')::integer as operator_messages_count,
           round(avg(m.processing_time_ms) filter (where m.sender_type = 'bot'), 2) as avg_processing_time_ms
      from public.messages m
     where m.created_at >= v_from and m.created_at < v_to
     group by m.company_id, m.chatbot_id
  ), active_conv as (
    select s.company_id, s.chatbot_id,
           count(distinct s.conversation_id)::integer as conversations_count,
           count(distinct s.conversation_id) filter (where s.is_new)::integer as new_conversations_count
      from (select m.company_id, m.chatbot_id, m.conversation_id, false as is_new
              from public.messages m
             where m.created_at >= v_from and m.created_at < v_to
            union all
            select c.company_id, c.chatbot_id, c.id, true
              from public.conversations c
             where c.created_at >= v_from and c.created_at < v_to) s
     group by s.company_id, s.chatbot_id
  ), esc as (
    select e.company_id, e.chatbot_id, count(*)::integer as hitl_escalations
      from public.hitl_escalations e
     where e.created_at >= v_from and e.created_at < v_to
     group by e.company_id, e.chatbot_id
  ), rx as (
    select r.company_id, r.chatbot_id,
           count(*) filter (where r.reaction = 'thumbs_up' or (r.reaction = 'rating' and r.rating >= 4))::integer as positive_reactions,
           count(*) filter (where r.reaction = 'thumbs_down' or (r.reaction = 'rating' and r.rating <= 2))::integer as negative_reactions
      from public.message_reactions r
     where r.created_at >= v_from and r.created_at < v_to
     group by r.company_id, r.chatbot_id
  ), kq as (
    select k.company_id, k.chatbot_id, count(*)::integer as knowledge_queries_count
      from public.knowledge_queries k
     where k.created_at >= v_from and k.created_at < v_to
     group by k.company_id, k.chatbot_id
  ), keys as (
    select company_id, chatbot_id from msg
    union select company_id, chatbot_id from active_conv
    union select company_id, chatbot_id from esc
    union select company_id, chatbot_id from rx
    union select company_id, chatbot_id from kq
  )
  select k.company_id, k.chatbot_id,
         coalesce(ac.conversations_count, 0), coalesce(ac.new_conversations_count, 0),
         coalesce(msg.messages_count, 0), coalesce(msg.end_user_messages_count, 0),
         coalesce(msg.bot_messages_count, 0), coalesce(msg.operator_messages_count, 0),
         coalesce(esc.hitl_escalations, 0), msg.avg_processing_time_ms,
         coalesce(rx.positive_reactions, 0), coalesce(rx.negative_reactions, 0),
         coalesce(kq.knowledge_queries_count, 0)
    from keys k
    left join msg on msg.company_id = k.company_id and msg.chatbot_id = k.chatbot_id
    left join active_conv ac on ac.company_id = k.company_id and ac.chatbot_id = k.chatbot_id
    left join esc on esc.company_id = k.company_id and esc.chatbot_id = k.chatbot_id
    left join rx on rx.company_id = k.company_id and rx.chatbot_id = k.chatbot_id
    left join kq on kq.company_id = k.company_id and kq.chatbot_id = k.chatbot_id;

  -- Rows of the day whose source rows are gone (deleted conversations) are removed.
  delete from public.analytics_daily a
   where a.day = p_day
     and not exists (select 1 from pg_temp.analytics_daily_rollup r
                      where r.company_id = a.company_id and r.chatbot_id = a.chatbot_id);

  insert into public.analytics_daily as a (
    company_id, chatbot_id, day, conversations_count, new_conversations_count, messages_count,
    end_user_messages_count, bot_messages_count, operator_messages_count, hitl_escalations,
    avg_processing_time_ms, positive_reactions, negative_reactions, knowledge_queries_count, refreshed_at)
  select r.company_id, r.chatbot_id, p_day, r.conversations_count, r.new_conversations_count, r.messages_count,
         r.end_user_messages_count, r.bot_messages_count, r.operator_messages_count, r.hitl_escalations,
         r.avg_processing_time_ms, r.positive_reactions, r.negative_reactions, r.knowledge_queries_count, now()
    from pg_temp.analytics_daily_rollup r
  on conflict (company_id, chatbot_id, day) do update
     set conversations_count     = excluded.conversations_count,
         new_conversations_count = excluded.new_conversations_count,
         messages_count          = excluded.messages_count,
         end_user_messages_count = excluded.end_user_messages_count,
         bot_messages_count      = excluded.bot_messages_count,
         operator_messages_count = excluded.operator_messages_count,
         hitl_escalations        = excluded.hitl_escalations,
         avg_processing_time_ms  = excluded.avg_processing_time_ms,
         positive_reactions      = excluded.positive_reactions,
         negative_reactions      = excluded.negative_reactions,
         knowledge_queries_count = excluded.knowledge_queries_count,
         refreshed_at            = excluded.refreshed_at;

  truncate pg_temp.analytics_daily_rollup;
end;
$$;

comment on procedure public.refresh_analytics_daily(date) is
  'Job (service_role / pg_cron): recomputes public.analytics_daily for one UTC day and every chatbot from messages, conversations, hitl_escalations, message_reactions and knowledge_queries; idempotent (upsert, stale rows of the day removed).';

revoke execute on procedure public.refresh_analytics_daily(date) from public, anon, authenticated;
grant execute on procedure public.refresh_analytics_daily(date) to service_role;
