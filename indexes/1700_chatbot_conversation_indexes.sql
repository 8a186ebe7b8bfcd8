-- Why: tenant-aware indexes of the chatbot and conversation domains. Every FK column set
-- and every policy column is indexed with company_id first (policies and services filter
-- on company_id; Citus distributes on it); partial indexes keep the hot working sets
-- (open conversations, the human-mode queue) small; time-series indexes serve
-- "latest first" listings. Primary/unique keys already cover: chatbots (company_id, id),
-- chatbot_operators (company_id, chatbot_id, ...), conversations (company_id, id, chatbot_id),
-- messages (company_id, id, conversation_id, chatbot_id), company_message_usage.
-- Deliberate exception: the messages -> conversations FK (company_id, conversation_id,
-- chatbot_id) is served by messages_conversation_time_idx (company_id, conversation_id, ...):
-- chatbot_id is a function of conversation_id, and a second index on the hottest table
-- would only cost writes.

{% from 'schema/_tenant_guard.sql' import doctor_notes -%}
-- chatbots
create index chatbots_created_by_idx on public.chatbots (company_id, created_by) where created_by is not null;
comment on index public.chatbots_created_by_idx is 'FK chatbots_created_by_fkey (user deletion).';
create index chatbots_template_code_idx on public.chatbots (template_code) where template_code is not null;
comment on index public.chatbots_template_code_idx is 'FK chatbots_template_fkey to the global template table.';

-- chatbot_operators
create index chatbot_operators_user_idx on public.chatbot_operators (company_id, user_id, chatbot_id);
comment on index public.chatbot_operators_user_idx is 'FK chatbot_operators_user_fkey and private.get_assigned_chatbot_ids() (index-only scan of a user''s chatbots).';
create index chatbot_operators_assigned_by_idx on public.chatbot_operators (company_id, assigned_by) where assigned_by is not null;
comment on index public.chatbot_operators_assigned_by_idx is 'FK chatbot_operators_assigned_by_fkey (user deletion).';

-- conversations
create index conversations_chatbot_last_message_idx on public.conversations (company_id, chatbot_id, last_message_at desc nulls last);
comment on index public.conversations_chatbot_last_message_idx is 'FK conversations_chatbot_fkey, operador policy column, and the inbox listing (latest activity first).';
create index conversations_open_idx on public.conversations (company_id, chatbot_id, last_message_at desc nulls last)
  where status in ('active', 'waiting_human', 'human');
comment on index public.conversations_open_idx is 'Partial: open conversations (active or in human mode) per chatbot, latest activity first.';
create index conversations_human_mode_idx on public.conversations (company_id, chatbot_id, hitl_escalated_at)
  where is_hitl_active;
comment on index public.conversations_human_mode_idx is 'Partial: the human-mode queue (waiting_human/human) per chatbot, oldest escalation first.';
create index conversations_end_user_open_idx on public.conversations (company_id, chatbot_id, channel, end_user_id)
  where status <> 'closed';
comment on index public.conversations_end_user_open_idx is 'Partial: the bot engine''s lookup of an end user''s current (not closed) conversation on a channel.';
create index conversations_assigned_operator_idx on public.conversations (company_id, assigned_operator_id, status)
  where assigned_operator_id is not null;
comment on index public.conversations_assigned_operator_idx is 'FK conversations_assigned_operator_fkey and "my conversations" of an operator.';

-- messages
{% if profile == 'citus' -%}
-- Profile citus: chatbot_id too (constant within a conversation), so that the bare policy
-- call chatbot_id = any (private.get_visible_chatbot_ids()) is an index condition, evaluated
-- once per scan, not a filter evaluated per message (no InitPlan on Citus; issue 19: a
-- transcript read under RLS 7x the explicit filter, docs/scale-out.md "Reads under RLS").
-- Rows come out in chatbot order then, so the latest first is a sort of one conversation.
{% endif -%}
create index messages_conversation_time_idx on public.messages (company_id, conversation_id, {{ 'chatbot_id, ' if profile == 'citus' }}created_at desc);
comment on index public.messages_conversation_time_idx is 'Time series: a conversation''s transcript, latest first; also serves FK messages_conversation_fkey.{{ " Profile citus: chatbot_id before created_at, for the index condition of the policies'' visible chatbots." if profile == 'citus' }}';
create index messages_chatbot_time_idx on public.messages (company_id, chatbot_id, created_at desc);
comment on index public.messages_chatbot_time_idx is 'Operador policy column; per-chatbot message time series (analytics roll-ups).';
create index messages_sender_idx on public.messages (company_id, sender_id) where sender_id is not null;
comment on index public.messages_sender_idx is 'FK messages_sender_fkey (user deletion) and per-operator activity.';

-- message_reactions
create index message_reactions_message_idx on public.message_reactions (company_id, message_id, conversation_id, chatbot_id);
comment on index public.message_reactions_message_idx is 'FK message_reactions_message_fkey; reactions of a message.';
create index message_reactions_chatbot_time_idx on public.message_reactions (company_id, chatbot_id, created_at desc);
comment on index public.message_reactions_chatbot_time_idx is 'Operador policy column; per-chatbot feedback time series.';
create index message_reactions_created_by_idx on public.message_reactions (company_id, created_by) where created_by is not null;
comment on index public.message_reactions_created_by_idx is 'FK message_reactions_created_by_fkey (user deletion).';

-- hitl_escalations
create index hitl_escalations_conversation_idx on public.hitl_escalations (company_id, conversation_id, chatbot_id);
comment on index public.hitl_escalations_conversation_idx is 'FK hitl_escalations_conversation_fkey; escalations of a conversation.';
create index hitl_escalations_chatbot_time_idx on public.hitl_escalations (company_id, chatbot_id, created_at desc);
comment on index public.hitl_escalations_chatbot_time_idx is 'Operador policy column; per-chatbot escalation history, latest first.';
create index hitl_escalations_escalated_by_idx on public.hitl_escalations (company_id, escalated_by) where escalated_by is not null;
comment on index public.hitl_escalations_escalated_by_idx is 'FK hitl_escalations_escalated_by_fkey (user deletion).';

comment on constraint messages_conversation_fkey on public.messages is
  'A message belongs to a conversation of its own chatbot.'{{ doctor_notes('public.messages', 'messages_conversation_fkey') }};
