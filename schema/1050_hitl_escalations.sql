-- Why: every hand-over of a conversation to a human is recorded with its reason (seed
-- section 3, "Escalación HITL basada en triggers configurables"), so supervisors can see
-- why the bot gave up and tune the per-chatbot triggers. Rows are written only by the
-- database (conversation trigger below); clients read them.

create table public.hitl_escalations (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  conversation_id uuid not null,
  chatbot_id uuid not null,
  reason public.hitl_escalation_reason not null,
  detail text not null default '',
  escalated_by uuid,
  created_at timestamptz not null default now(),
  constraint hitl_escalations_pkey primary key (company_id, id),
  constraint hitl_escalations_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint hitl_escalations_conversation_fkey foreign key (company_id, conversation_id, chatbot_id)
    references public.conversations (company_id, id, chatbot_id) on delete cascade,
  constraint hitl_escalations_escalated_by_fkey foreign key (company_id, escalated_by)
    references public.users (company_id, id) on delete no action,
  constraint hitl_escalations_detail_length_check check (char_length(detail) <= 500)
);

comment on table public.hitl_escalations is
  'Log of conversations handed to a human (tenant table, append-only for clients): reason and detail of each escalation. '
  'Owner/administrador/supervisor read all of the company; operador reads those of assigned chatbots.';
comment on column public.hitl_escalations.company_id is 'Owning company (tenant key).';
comment on column public.hitl_escalations.id is 'Escalation id.';
comment on column public.hitl_escalations.conversation_id is 'Escalated conversation.';
comment on column public.hitl_escalations.chatbot_id is 'Chatbot of the conversation (denormalised for operador policies; kept equal to the conversation''s by the foreign key).';
comment on column public.hitl_escalations.reason is 'What triggered the escalation.';
comment on column public.hitl_escalations.detail is 'Specifics: matched keyword or phrase, turn count, rating, or empty for manual escalations.';
comment on column public.hitl_escalations.escalated_by is 'User who escalated manually; null for automatic escalations or after that user was deleted.';
comment on column public.hitl_escalations.created_at is 'When the conversation entered human mode.';

-- Automatic escalation used by the message and reaction triggers. Moves an active (bot
-- mode) conversation to waiting_human; returns false when it was not in bot mode.
create function private.escalate_conversation(
  p_company_id uuid, p_conversation_id uuid, p_reason public.hitl_escalation_reason, p_detail text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_found boolean;
begin
  perform pg_catalog.set_config('neurant.hitl_reason', p_reason::text, true);
  perform pg_catalog.set_config('neurant.hitl_detail', coalesce(p_detail, ''), true);
  update public.conversations c
     set status = 'waiting_human'
   where c.company_id = p_company_id and c.id = p_conversation_id and c.status = 'active';
  v_found := found;
  perform pg_catalog.set_config('neurant.hitl_reason', '', true);
  perform pg_catalog.set_config('neurant.hitl_detail', '', true);
  return v_found;
end
$$;
comment on function private.escalate_conversation(uuid, uuid, public.hitl_escalation_reason, text) is
  'Hands a bot-mode (active) conversation to a human (status waiting_human) and records the reason; false when it was not in bot mode.';
revoke execute on function private.escalate_conversation(uuid, uuid, public.hitl_escalation_reason, text) from public, anon, authenticated;

-- Every entry into human mode is logged: with the reason set by escalate_conversation, or
-- as 'manual' (by the calling user) when staff or a service changed the status directly.
create function private.conversations_log_escalation()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  -- Trusted only when set by private.escalate_conversation() (a nested trigger).
  v_reason text := case when pg_catalog.pg_trigger_depth() > 1
                        then coalesce(pg_catalog.current_setting('neurant.hitl_reason', true), '')
                        else '' end;
begin
  if new.is_hitl_active and (tg_op = 'INSERT' or not old.is_hitl_active) then
    insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason, detail, escalated_by)
    values (new.company_id, new.id, new.chatbot_id,
            coalesce(nullif(v_reason, ''), 'manual')::public.hitl_escalation_reason,
            case when v_reason = '' then ''
                 else pg_catalog.left(coalesce(pg_catalog.current_setting('neurant.hitl_detail', true), ''), 500) end,
            case when v_reason = '' then public.get_current_user_id() end);
  end if;
  return null;
end
$$;
comment on function private.conversations_log_escalation() is
  'Trigger: records a public.hitl_escalations row whenever a conversation enters human mode. The reason/detail set by private.escalate_conversation are honoured only from a nested trigger (pg_trigger_depth() > 1); a direct status change is always logged as manual, by the calling user (a session cannot forge the reason).';
revoke execute on function private.conversations_log_escalation() from public, anon, authenticated;

create trigger conversations_log_escalation
  after insert or update of status on public.conversations
  for each row execute function private.conversations_log_escalation();
comment on trigger conversations_log_escalation on public.conversations is 'Logs every entry into human mode in public.hitl_escalations.';

-- A member can be removed while the history stays (private.clear_user_reference).
create trigger users_clear_hitl_escalations_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.hitl_escalations', 'escalated_by');
comment on trigger users_clear_hitl_escalations_references on public.users is
  'Clears hitl_escalations.escalated_by (the escalation stays in the log) before a member is deleted.';

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
create trigger hitl_escalations_0_tenant_guard
  before insert or update on public.hitl_escalations
  for each row execute function private.reject_other_tenant_insert();
comment on trigger hitl_escalations_0_tenant_guard on public.hitl_escalations is
  'Fires first: company_id never changes (any role); a member inserts only into their own company.';
