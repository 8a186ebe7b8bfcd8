-- Why: the daily analytics roll-up (docs/design.md "Daily analytics are an idempotent, eventually
-- consistent roll-up"). public.refresh_analytics_daily recomputes one UTC day for every
-- chatbot from the live AND archived source rows and upserts it, so running it twice,
-- re-running after late messages, or running it after the archive job moved the day's
-- conversations gives the same numbers; a (chatbot, day) already moved to
-- archive.analytics_archived is frozen. public.job_analytics runs it per day.

create procedure public.refresh_analytics_daily(p_day date)
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp{{ citus_sequential('') }}
as $$
declare
  v_from pg_catalog.timestamptz;
  v_to   pg_catalog.timestamptz;
begin
  if p_day is null then
    raise exception using errcode = '22023',
      message = 'p_day is required',
      hint = 'Pass the UTC day to roll up, e.g. current_date - 1.';
  end if;
  v_from := p_day::pg_catalog.timestamp at time zone 'UTC';
  v_to   := (p_day + 1)::pg_catalog.timestamp at time zone 'UTC';

  -- One statement, no temp table: trusted code never reuses (or creates) an object in
  -- pg_temp, where an end user sharing a pooled session could have planted one with a
  -- trigger (issue 9). The day's roll-up is the CTE "day_rollup"; stale rows go in "stale".
  with msg as (
    select m.company_id, m.chatbot_id,
           pg_catalog.count(*)::integer as messages_count,
           pg_catalog.count(*) filter (where m.sender_type = 'end_user')::integer as end_user_messages_count,
           pg_catalog.count(*) filter (where m.sender_type = 'bot')::integer as bot_messages_count,
           pg_catalog.count(*) filter (where m.sender_type = 'operator')::integer as operator_messages_count,
           round(avg(m.processing_time_ms) filter (where m.sender_type = 'bot'), 2) as avg_processing_time_ms
      from (select company_id, chatbot_id, sender_type, processing_time_ms, created_at from public.messages
            union all
            select company_id, chatbot_id, sender_type, processing_time_ms, created_at from archive.messages_archived) m
     where m.created_at >= v_from and m.created_at < v_to
     group by m.company_id, m.chatbot_id
  ), active_conv as (
    select s.company_id, s.chatbot_id,
           pg_catalog.count(distinct s.conversation_id)::integer as conversations_count,
           pg_catalog.count(distinct s.conversation_id) filter (where s.is_new)::integer as new_conversations_count
      from (select m.company_id, m.chatbot_id, m.conversation_id, false as is_new
              from (select company_id, chatbot_id, conversation_id, created_at from public.messages
                    union all
                    select company_id, chatbot_id, conversation_id, created_at from archive.messages_archived) m
             where m.created_at >= v_from and m.created_at < v_to
            union all
            select c.company_id, c.chatbot_id, c.id, true
              from (select company_id, chatbot_id, id, created_at from public.conversations
                    union all
                    select company_id, chatbot_id, id, created_at from archive.conversations_archived) c
             where c.created_at >= v_from and c.created_at < v_to) s
     group by s.company_id, s.chatbot_id
  ), esc as (
    select e.company_id, e.chatbot_id, pg_catalog.count(*)::integer as hitl_escalations
      from (select company_id, chatbot_id, created_at from public.hitl_escalations
            union all
            select company_id, chatbot_id, created_at from archive.hitl_escalations_archived) e
     where e.created_at >= v_from and e.created_at < v_to
     group by e.company_id, e.chatbot_id
  ), rx as (
    select r.company_id, r.chatbot_id,
           pg_catalog.count(*) filter (where r.reaction = 'thumbs_up' or (r.reaction = 'rating' and r.rating >= 4))::integer as positive_reactions,
           pg_catalog.count(*) filter (where r.reaction = 'thumbs_down' or (r.reaction = 'rating' and r.rating <= 2))::integer as negative_reactions
      from (select company_id, chatbot_id, reaction, rating, created_at from public.message_reactions
            union all
            select company_id, chatbot_id, reaction, rating, created_at from archive.message_reactions_archived) r
     where r.created_at >= v_from and r.created_at < v_to
     group by r.company_id, r.chatbot_id
  ), kq as (
    select k.company_id, k.chatbot_id, pg_catalog.count(*)::integer as knowledge_queries_count
      from (select company_id, chatbot_id, created_at from public.knowledge_queries
            union all
            select company_id, chatbot_id, created_at from archive.knowledge_queries_archived) k
     where k.created_at >= v_from and k.created_at < v_to
     group by k.company_id, k.chatbot_id
  ), keys as (
    select company_id, chatbot_id from msg
    union select company_id, chatbot_id from active_conv
    union select company_id, chatbot_id from esc
    union select company_id, chatbot_id from rx
    union select company_id, chatbot_id from kq
  ), day_rollup as (
    select k.company_id, k.chatbot_id,
           coalesce(ac.conversations_count, 0) as conversations_count,
           coalesce(ac.new_conversations_count, 0) as new_conversations_count,
           coalesce(msg.messages_count, 0) as messages_count,
           coalesce(msg.end_user_messages_count, 0) as end_user_messages_count,
           coalesce(msg.bot_messages_count, 0) as bot_messages_count,
           coalesce(msg.operator_messages_count, 0) as operator_messages_count,
           coalesce(esc.hitl_escalations, 0) as hitl_escalations, msg.avg_processing_time_ms,
           coalesce(rx.positive_reactions, 0) as positive_reactions,
           coalesce(rx.negative_reactions, 0) as negative_reactions,
           coalesce(kq.knowledge_queries_count, 0) as knowledge_queries_count
      from keys k
      left join msg on msg.company_id = k.company_id and msg.chatbot_id = k.chatbot_id
      left join active_conv ac on ac.company_id = k.company_id and ac.chatbot_id = k.chatbot_id
      left join esc on esc.company_id = k.company_id and esc.chatbot_id = k.chatbot_id
      left join rx on rx.company_id = k.company_id and rx.chatbot_id = k.chatbot_id
      left join kq on kq.company_id = k.company_id and kq.chatbot_id = k.chatbot_id
  ), stale as (
    -- Rows of the day whose source rows are gone (deleted conversations) are removed,
    -- except under a company-wide legal hold (they are held: private.legal_hold_guard).
    delete from public.analytics_daily a
     where a.day = p_day
       and not exists (select 1 from public.legal_holds h
                        where h.company_id = a.company_id and h.released_at is null and h.conversation_id is null)
       and {% if profile == 'citus' %}(a.company_id, a.chatbot_id) not in (select r.company_id, r.chatbot_id from day_rollup r){% else %}not exists (select 1 from day_rollup r
                        where r.company_id = a.company_id and r.chatbot_id = a.chatbot_id){% endif %}
  )
  insert into public.analytics_daily as a (
    company_id, chatbot_id, day, conversations_count, new_conversations_count, messages_count,
    end_user_messages_count, bot_messages_count, operator_messages_count, hitl_escalations,
    avg_processing_time_ms, positive_reactions, negative_reactions, knowledge_queries_count, refreshed_at)
  select r.company_id, r.chatbot_id, p_day, r.conversations_count, r.new_conversations_count, r.messages_count,
         r.end_user_messages_count, r.bot_messages_count, r.operator_messages_count, r.hitl_escalations,
         r.avg_processing_time_ms, r.positive_reactions, r.negative_reactions, r.knowledge_queries_count, now()
    from day_rollup r
   where {% if profile == 'citus' %}(r.company_id, r.chatbot_id) not in (select x.company_id, x.chatbot_id from archive.analytics_archived x where x.day = p_day){% else %}not exists (select 1 from archive.analytics_archived x
                      where x.company_id = r.company_id and x.chatbot_id = r.chatbot_id and x.day = p_day){% endif %}
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
end;
$$;

comment on procedure public.refresh_analytics_daily(date) is
  'Job (service_role / pg_cron, or public.job_analytics): recomputes public.analytics_daily for one UTC day and every chatbot from messages, conversations, hitl_escalations, message_reactions and knowledge_queries, live and archived (archival never changes a day''s numbers); idempotent (upsert, stale rows of the day removed unless a company-wide legal hold keeps them). A (chatbot, day) already moved to archive.analytics_archived is frozen and not rewritten.';

create procedure public.job_analytics(
  inout p_run_id bigint default null,
  p_days integer default 3,
  p_from date default null,
  p_to date default null,
  p_dry_run boolean default false)
  language plpgsql
as $$
declare
  v_to pg_catalog.date := coalesce(p_to, (pg_catalog.now() at time zone 'UTC')::pg_catalog.date);
  v_from pg_catalog.date;
  v_day pg_catalog.date;
  v_rows bigint;
  v_err pg_catalog.text;
begin
  perform private.job_require_trusted_path(pg_catalog.current_schemas(true));
  if p_days is null or p_days < 1 or p_days > 3660 then
    raise exception using errcode = '22023', message = pg_catalog.format('p_days must be 1..3660, not %s', p_days);
  end if;
  v_from := coalesce(p_from, v_to - (p_days - 1));
  if v_from > v_to then
    raise exception using errcode = '22023', message = pg_catalog.format('p_from (%s) is after p_to (%s)', v_from, v_to);
  end if;
  p_run_id := private.job_start('analytics', pg_catalog.jsonb_build_object('from', v_from, 'to', v_to), p_dry_run);
  commit;
  if p_dry_run then
    update private.job_runs set rows_moved = pg_catalog.jsonb_build_object('days', v_to - v_from + 1) where id = p_run_id;
    perform private.job_finish(p_run_id, 'succeeded');
    commit;
    return;
  end if;
  v_day := v_from;
  while v_day <= v_to loop{% if profile == 'citus' %}
    -- Citus: each day's transaction reads the shards one connection per node, so that it
    -- may then write the reference table private.job_runs (job_progress).
    perform pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);{% endif %}
    begin
      call public.refresh_analytics_daily(v_day);
      select pg_catalog.count(*) into v_rows from public.analytics_daily a where a.day = v_day;
    exception when others then
      v_err := pg_catalog.format('%s: %s', v_day, sqlerrm);
    end;
    exit when v_err is not null;
    perform private.job_progress(p_run_id, v_day::pg_catalog.text,
                                 pg_catalog.jsonb_build_object('days', 1, 'analytics_daily', v_rows),
                                 pg_catalog.jsonb_build_object('days', v_to - v_from + 1));
    commit;
    v_day := v_day + 1;
  end loop;
  perform private.job_finish(p_run_id, case when v_err is null then 'succeeded' else 'failed' end, v_err);
  commit;
  if v_err is not null then
    raise exception using errcode = 'P0001', message = pg_catalog.format('analytics job run %s failed on %s', p_run_id, v_err);
  end if;
end;
$$;
comment on procedure public.job_analytics(bigint, integer, date, date, boolean) is
  'Job "analytics": refreshes public.analytics_daily for each UTC day from p_from to p_to (default: the last p_days days, today included), one '
  'transaction per day. Idempotent: re-running a day gives the same numbers; late data is picked up by re-running its day.';

-- Privileges: the jobs are for service_role (and the owner / pg_cron).
revoke execute on procedure public.refresh_analytics_daily(date) from public, anon, authenticated;
grant execute on procedure public.refresh_analytics_daily(date) to service_role;
revoke execute on procedure public.job_analytics(bigint, integer, date, date, boolean) from public, anon, authenticated;
grant execute on procedure public.job_analytics(bigint, integer, date, date, boolean) to service_role;
