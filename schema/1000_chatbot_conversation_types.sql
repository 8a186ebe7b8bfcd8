-- Why: the chatbot and conversation domains share closed sets (channels, conversation
-- status, message sender, reaction kind, HITL escalation reason) and a few pure
-- validation helpers used by check constraints; they are created first so every later
-- table of the 1000 range can use them.

create type public.channel_type as enum (
  'web', 'whatsapp', 'telegram', 'messenger', 'instagram', 'slack', 'email', 'sms', 'api'
);
comment on type public.channel_type is
  'Channel a chatbot is published on and a conversation happens in (web widget, messaging apps, email, SMS, raw API).';

create type public.conversation_status as enum ('active', 'waiting_human', 'human', 'resolved', 'closed');
comment on type public.conversation_status is
  'Lifecycle of a conversation. active = the bot answers; waiting_human = escalated, waiting for an operator; '
  'human = an operator has taken over; resolved = answered, reopens to active when the end user writes again; '
  'closed = terminal (a new contact starts a new conversation). Transitions are validated by private.conversations_guard_transition().';

create type public.message_sender_type as enum ('end_user', 'bot', 'operator', 'system');
comment on type public.message_sender_type is
  'Who wrote a message: the end user (customer), the AI bot, a human operator (a public.users row), or the platform itself (system notices).';

create type public.reaction_type as enum ('thumbs_up', 'thumbs_down', 'rating');
comment on type public.reaction_type is
  'Kind of feedback on a message: thumbs up/down, or a 1-5 star rating (rating column required only for ''rating'').';

create type public.hitl_escalation_reason as enum ('keyword', 'human_request', 'bot_turns', 'low_rating', 'manual');
comment on type public.hitl_escalation_reason is
  'Why a conversation was handed to a human: a configured keyword in an end-user message, an explicit request for a human, '
  'too many bot turns without resolution, a low rating of a bot answer, or a manual escalation by staff/service.';

-- Normalised form used for phrase matching: lower case, every run of non-word characters
-- collapsed to one space, trimmed. 'Talk to a HUMAN!!' -> 'talk to a human'.
-- No SET clause: a function with one is never inlined, and this one is inlined into the
-- expression that calls it (the message write path normalises every end-user message;
-- issue 21). It names only qualified pg_catalog functions and no type or operator, so the
-- caller's search_path changes nothing.
create function private.normalize_phrase(p_text text)
returns text
language sql
immutable
parallel safe
as $$
  select pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.lower(p_text), '[^[:alnum:]_]+', ' ', 'g'))
$$;
comment on function private.normalize_phrase(text) is
  'Normalises text for HITL phrase matching: lower case, non-alphanumeric runs collapsed to one space, trimmed. '
  'doctor: allow function.search_path inlined into its caller (a SET clause forbids that); it names only qualified pg_catalog functions, no type or operator.';

-- The phrase lists normalised once, when a chatbot's configuration is written: stored
-- (generated) columns of public.chatbots, so a message normalises only its own text
-- (issue 11: normalising every phrase of both lists per message was a third of the
-- trigger time of an end-user message).
create function private.normalize_phrases(p_phrases text[])
returns text[]
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(pg_catalog.array_agg(private.normalize_phrase(q.phrase) order by q.ord), '{}')
    from pg_catalog.unnest(p_phrases) with ordinality as q (phrase, ord)
$$;
comment on function private.normalize_phrases(text[]) is
  'The phrases of a list normalised one by one (private.normalize_phrase), in order (an empty list for an empty or null one).';

-- Returns the first phrase of p_phrases contained in a text as a whole word sequence
-- ('human' matches 'a human please' but not 'inhuman'), or null. Both sides come
-- normalised: p_normalized_text is private.normalize_phrase(text), computed once per
-- message however many lists it is matched against, and p_normalized is
-- private.normalize_phrases(p_phrases) (a generated column of public.chatbots).
-- plpgsql, not SQL: a loop of simple expressions needs no executor per call, which the
-- query over generate_subscripts did (issue 21: the message write path calls it once or
-- twice per end-user message).
create function private.match_phrase(p_normalized_text text, p_phrases text[], p_normalized text[])
returns text
language plpgsql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
declare
  v_text text := ' ' || p_normalized_text || ' ';
begin
  for i in 1 .. coalesce(pg_catalog.cardinality(p_normalized), 0) loop
    -- phrases normalise to a non-empty string by the lists' check constraint
    -- (phrase_list_is_valid), the <> '' test only keeps the function total for other callers
    if p_normalized[i] <> '' and pg_catalog.strpos(v_text, ' ' || p_normalized[i] || ' ') > 0 then
      return p_phrases[i];
    end if;
  end loop;
  return null;
end
$$;
comment on function private.match_phrase(text, text[], text[]) is
  'First phrase of the list that occurs in the normalised text (private.normalize_phrase) as a whole-word sequence, case and punctuation insensitive; null when none. '
  'Takes the list and its normalised form (private.normalize_phrases, stored with the chatbot).';

create function private.phrase_list_is_valid(p_phrases text[])
returns boolean
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select p_phrases is not null
     and pg_catalog.cardinality(p_phrases) <= 200
     and pg_catalog.array_position(p_phrases, null) is null
     and coalesce(pg_catalog.array_ndims(p_phrases), 1) = 1
     and not exists (
           select from pg_catalog.unnest(p_phrases) as p (phrase)
            where pg_catalog.char_length(p.phrase) not between 1 and 200
               or private.normalize_phrase(p.phrase) = '')
$$;
comment on function private.phrase_list_is_valid(text[]) is
  'Check helper: a one-dimensional list of at most 200 phrases, none null, each 1-200 characters with at least one letter or digit.';

create function private.channel_list_is_valid(p_channels public.channel_type[])
returns boolean
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select p_channels is not null
     and pg_catalog.cardinality(p_channels) >= 1
     and pg_catalog.array_ndims(p_channels) = 1
     and pg_catalog.array_position(p_channels, null) is null
     and (select pg_catalog.count(distinct c) from pg_catalog.unnest(p_channels) as c) = pg_catalog.cardinality(p_channels)
$$;
comment on function private.channel_list_is_valid(public.channel_type[]) is
  'Check helper: a non-empty, one-dimensional list of channels without nulls or duplicates.';
