-- Why: feedback and quality scoring of messages (seed section 3, "Message Reactions"):
-- end users react to bot answers through the backend, staff review answers in the
-- dashboard. A low end-user rating of a bot answer is one of the configurable HITL
-- escalation triggers; a good one counts as progress (resets the bot-turn counter).

{% from 'schema/_tenant_guard.sql' import tenant_guard -%}
create table public.message_reactions (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  message_id uuid not null,
  conversation_id uuid not null,
  chatbot_id uuid not null,
  reaction public.reaction_type not null,
  rating smallint,
  comment text not null default '',
  created_by uuid,
  created_at timestamptz not null default now(),
  constraint message_reactions_pkey primary key (company_id, id),
  constraint message_reactions_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint message_reactions_message_fkey foreign key (company_id, message_id, conversation_id, chatbot_id)
    references public.messages (company_id, id, conversation_id, chatbot_id) on delete cascade,
  constraint message_reactions_created_by_fkey foreign key (company_id, created_by)
    references public.users (company_id, id) on delete no action,
  constraint message_reactions_rating_range_check check (rating between 1 and 5),
  constraint message_reactions_rating_required_check check ((reaction = 'rating') = (rating is not null)),
  constraint message_reactions_comment_length_check check (char_length(comment) <= 2000)
);

comment on table public.message_reactions is
  'Feedback on messages (tenant table, append-only for clients). End-user reactions come from the backend (created_by null); '
  'staff and assigned operadores add review reactions as themselves. Visibility follows the conversation.';
comment on column public.message_reactions.company_id is 'Owning company (tenant key).';
comment on column public.message_reactions.id is 'Reaction id.';
comment on column public.message_reactions.message_id is 'Message reacted to.';
comment on column public.message_reactions.conversation_id is 'Conversation of the message (filled from the message when omitted; pinned by the foreign key).';
comment on column public.message_reactions.chatbot_id is 'Chatbot of the message (filled from the message when omitted; pinned by the foreign key); used by operador policies.';
comment on column public.message_reactions.reaction is 'thumbs_up, thumbs_down, or rating (then rating is required).';
comment on column public.message_reactions.rating is 'Score 1-5, present exactly when reaction = rating.';
comment on column public.message_reactions.comment is 'Optional free-text feedback, up to 2000 characters.';
comment on column public.message_reactions.created_by is 'Staff user who reacted (forced to the caller); null for end-user reactions recorded by the backend, or after that user was deleted.';
comment on column public.message_reactions.created_at is 'When the reaction was given.';

create function private.message_reactions_before_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id uuid := private.get_current_user_id();
  v_msg record;
begin
  if v_user_id is not null then
    if new.company_id is distinct from private.get_user_company_id() then
      raise exception using errcode = '42501',
        message = 'new row violates row-level security policy for table "message_reactions"',
        hint = 'Reactions can only be given to messages of your own company.';
    end if;
    new.created_by := v_user_id;
  end if;
  if new.conversation_id is null or new.chatbot_id is null then
    -- filled only from a message the caller may see (an operador: of its assigned chatbots),
    -- so a message it cannot see fails exactly like one that does not exist
    select m.conversation_id, m.chatbot_id into v_msg
      from public.messages m
     where m.company_id = new.company_id and m.id = new.message_id
       and (v_user_id is null or private.get_user_role() is distinct from 'operador'
            or m.chatbot_id = any (private.get_assigned_chatbot_ids()));
    if found then
      new.conversation_id := coalesce(new.conversation_id, v_msg.conversation_id);
      new.chatbot_id := coalesce(new.chatbot_id, v_msg.chatbot_id);
    end if;
  end if;
  return new;
end
$$;
comment on function private.message_reactions_before_insert() is
  'Trigger: stamps created_by with the calling user (42501 outside the caller''s company); fills conversation_id/chatbot_id from the message, '
  'only from one the caller may see (an invisible message fails like a missing one).';
revoke execute on function private.message_reactions_before_insert() from public, anon, authenticated;

create trigger message_reactions_before_insert
  before insert on public.message_reactions
  for each row execute function private.message_reactions_before_insert();
comment on trigger message_reactions_before_insert on public.message_reactions is 'Stamps the reacting user; fills denormalised keys.';

-- End-user feedback on a bot answer: low -> escalate (reason low_rating), high -> progress.
create function private.message_reactions_after_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_score smallint := case new.reaction when 'thumbs_down' then 1 when 'thumbs_up' then 5 else new.rating end;
  v_sender public.message_sender_type;
  v_bot record;
begin
  if new.created_by is not null then
    return null; -- staff reviews never escalate
  end if;
  select m.sender_type into v_sender
    from public.messages m where m.company_id = new.company_id and m.id = new.message_id;
  if v_sender is distinct from 'bot' then
    return null;
  end if;
  select b.hitl_enabled, b.hitl_low_rating_threshold into v_bot
    from public.chatbots b where b.company_id = new.company_id and b.id = new.chatbot_id;
  if v_bot.hitl_enabled and v_bot.hitl_low_rating_threshold is not null and v_score <= v_bot.hitl_low_rating_threshold then
    perform private.escalate_conversation(new.company_id, new.conversation_id, 'low_rating',
                                          format('end user rated a bot answer %s/5 (%s; threshold %s)',
                                                 v_score, new.reaction, v_bot.hitl_low_rating_threshold));
  elsif v_score >= 4 then
    update public.conversations c
       set bot_turns_without_resolution = 0
     where c.company_id = new.company_id and c.id = new.conversation_id
       and c.status = 'active' and c.bot_turns_without_resolution <> 0;
  end if;
  return null;
end
$$;
comment on function private.message_reactions_after_insert() is
  'Trigger: an end-user rating of a bot answer at or below chatbots.hitl_low_rating_threshold (thumbs_down = 1) escalates the conversation; '
  'a good one (>= 4, thumbs_up = 5) resets its bot-turn counter.';
revoke execute on function private.message_reactions_after_insert() from public, anon, authenticated;

create trigger message_reactions_after_insert
  after insert on public.message_reactions
  for each row execute function private.message_reactions_after_insert();
comment on trigger message_reactions_after_insert on public.message_reactions is 'Low-rating HITL escalation.';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.message_reactions') }}

-- A member can be removed while the history stays (private.clear_user_reference).
create trigger users_clear_message_reactions_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.message_reactions', 'created_by');
comment on trigger users_clear_message_reactions_references on public.users is
  'Clears message_reactions.created_by (the review stays) before a member is deleted.';
