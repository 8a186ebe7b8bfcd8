"""A demo data set for the lifecycle jobs: companies whose conversations closed long ago,
with messages, reactions, escalations, integration logs and daily analytics. Used by
`neurant-db jobs bench` (archival throughput) and the lifecycle tests. Loaded with
triggers off (set session_replication_role = replica): this exercises the moves, not
the write rules; the bookkeeping the triggers would have done (company counters, message
usage) is written after, so that the data set is consistent (`doctor --data`)."""

from __future__ import annotations

from typing import Any

import psycopg

LOAD_SQL = """
set session_replication_role = replica;
insert into public.companies (id, name, subscription_plan)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid, 'lifecycle company ' || c, 'professional'
from generate_series(%(first)s, %(first)s + %(companies)s - 1) c;
insert into public.chatbots (company_id, id, name, system_prompt)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid,
       ('00000000-0000-4000-b000-' || lpad(to_hex(c * 10 + b), 12, '0'))::uuid, 'bot ' || b, 'You are helpful.'
from generate_series(%(first)s, %(first)s + %(companies)s - 1) c, generate_series(1, 2) b;
insert into public.integrations (company_id, id, type, name, config)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid,
       ('00000000-0000-4000-e000-' || lpad(to_hex(c), 12, '0'))::uuid, 'webhook', 'hook ' || c, '{}'::jsonb
from generate_series(%(first)s, %(first)s + %(companies)s - 1) c;
insert into public.conversations (company_id, id, chatbot_id, end_user_id, channel, status,
                                  last_message_at, closed_at, created_at, updated_at)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid,
       ('00000000-0000-4000-c000-' || lpad(to_hex(c * 1000000 + v), 12, '0'))::uuid,
       ('00000000-0000-4000-b000-' || lpad(to_hex(c * 10 + 1 + v %% 2), 12, '0'))::uuid,
       'end-user-' || v, 'web', 'closed'::public.conversation_status,
       t.created + interval '10 minutes', t.created + interval '1 hour', t.created, t.created + interval '1 hour'
from generate_series(%(first)s, %(first)s + %(companies)s - 1) c, generate_series(1, %(conversations)s) v,
     lateral (select timestamptz '2024-06-01 00:00:00+00' + ((v %% 300) || ' hours')::interval as created) t;
insert into public.messages (company_id, id, conversation_id, chatbot_id, sender_type, content,
                             processing_time_ms, created_at)
select cv.company_id, gen_random_uuid(), cv.id, cv.chatbot_id,
       (case when m %% 2 = 0 then 'bot' else 'end_user' end)::public.message_sender_type,
       'message ' || m || ' of a conversation that ended long ago', case when m %% 2 = 0 then 300 + m end,
       cv.created_at + (m || ' seconds')::interval
from public.conversations cv, generate_series(1, %(messages)s) m
where cv.company_id in (select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid
                        from generate_series(%(first)s, %(first)s + %(companies)s - 1) c);
insert into public.message_reactions (company_id, id, message_id, conversation_id, chatbot_id, reaction, created_at)
select m.company_id, gen_random_uuid(), m.id, m.conversation_id, m.chatbot_id, 'thumbs_up',
       m.created_at + interval '1 second'
from public.messages m
where m.sender_type = 'bot' and m.content like 'message 2 %%'
  and m.company_id in (select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid
                       from generate_series(%(first)s, %(first)s + %(companies)s - 1) c);
insert into public.hitl_escalations (company_id, id, conversation_id, chatbot_id, reason, detail, created_at)
select cv.company_id, gen_random_uuid(), cv.id, cv.chatbot_id, 'keyword', 'demo', cv.created_at + interval '5 minutes'
from public.conversations cv
where cv.end_user_id like '%%0' and cv.company_id in (
  select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid
  from generate_series(%(first)s, %(first)s + %(companies)s - 1) c);
insert into public.integration_logs (company_id, id, integration_id, direction, operation, status, latency_ms,
                                     created_at)
select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid, gen_random_uuid(),
       ('00000000-0000-4000-e000-' || lpad(to_hex(c), 12, '0'))::uuid, 'outbound', 'messages.send', 'success', 100,
       timestamptz '2024-06-01 00:00:00+00' + (l || ' minutes')::interval
from generate_series(%(first)s, %(first)s + %(companies)s - 1) c, generate_series(1, %(conversations)s) l;
-- The bookkeeping the triggers skipped above, so that the data set is consistent
-- (`neurant-db doctor --data` finds nothing on it): the companies' counters, and the usage
-- the messages were counted in (in the month they are dated: the demo's "written then").
update public.companies c set current_chatbot_count = b.n
  from (select company_id, count(*) as n from public.chatbots group by company_id) b
 where b.company_id = c.id
   and c.id in (select ('00000000-0000-4000-9000-' || lpad(to_hex(g), 12, '0'))::uuid
                from generate_series(%(first)s, %(first)s + %(companies)s - 1) g);
update public.companies c set current_integration_count = i.n
  from (select company_id, count(*) as n from public.integrations group by company_id) i
 where i.company_id = c.id
   and c.id in (select ('00000000-0000-4000-9000-' || lpad(to_hex(g), 12, '0'))::uuid
                from generate_series(%(first)s, %(first)s + %(companies)s - 1) g);
insert into public.company_message_usage as u (company_id, month, shard, message_count, total_message_count)
select m.company_id, date_trunc('month', m.created_at at time zone 'UTC')::date, 0,
       count(*) filter (where m.sender_type = 'bot'), count(*)
from public.messages m
where m.company_id in (select ('00000000-0000-4000-9000-' || lpad(to_hex(c), 12, '0'))::uuid
                       from generate_series(%(first)s, %(first)s + %(companies)s - 1) c)
group by 1, 2
on conflict (company_id, month, shard) do update
   set message_count = u.message_count + excluded.message_count,
       total_message_count = u.total_message_count + excluded.total_message_count;
set session_replication_role = origin;
"""


def load_demo(conn: psycopg.Connection, *, companies: int = 10, conversations: int = 100, messages: int = 10,
              first: int = 1) -> dict[str, Any]:
    """Load the data set (ids derived from `first` so two loads do not collide) and roll
    up its days into analytics_daily. Returns the row counts of the live tables."""
    params = {"companies": companies, "conversations": conversations, "messages": messages, "first": first}
    # client-side binding: the script is several statements, sent as one simple query
    with psycopg.ClientCursor(conn) as cur:
        cur.execute(LOAD_SQL, params)
    days = conn.execute(
        "select distinct (created_at at time zone 'UTC')::date from public.conversations "
        "where company_id = %s order by 1", (f"00000000-0000-4000-9000-{first:012x}",)).fetchall()
    for (day,) in days:
        conn.execute("call public.refresh_analytics_daily(%s)", (day,))
    conn.execute("analyze")
    return live_counts(conn)


COUNTED = ("public.conversations", "public.messages", "public.message_reactions", "public.hitl_escalations",
           "public.knowledge_queries", "public.integration_logs", "public.analytics_daily",
           "archive.conversations_archived", "archive.messages_archived", "archive.message_reactions_archived",
           "archive.hitl_escalations_archived", "archive.knowledge_queries_archived",
           "archive.integration_logs_archived", "archive.analytics_archived")


def live_counts(conn: psycopg.Connection) -> dict[str, int]:
    out = {}
    for table in COUNTED:
        row = conn.execute(f"select count(*) from {table}").fetchone()  # fixed names
        out[table] = int(row[0]) if row else 0
    return out
