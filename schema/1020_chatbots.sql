-- Why: a company's AI agents (seed section 2, "Chatbots"): prompt, channels, per-chatbot
-- HITL escalation settings. The plan's chatbot limit is enforced here, race-free, by
-- bumping companies.current_chatbot_count through private.consume_quota() in the same
-- transaction as the insert/delete (the counter row lock serialises concurrent creators).

{% from 'schema/_tenant_guard.sql' import tenant_guard, doctor_notes -%}
create table public.chatbots (
  company_id uuid not null,
  id uuid not null default gen_random_uuid(),
  name text not null,
  description text not null default '',
  system_prompt text not null,
  template_code text,
  channels public.channel_type[] not null default '{web}',
  is_active boolean not null default true,
  hitl_enabled boolean not null default true,
  hitl_keywords text[] not null default '{}',
  hitl_human_request_phrases text[] not null default '{"talk to a human","speak to a human","real person","human agent","talk to an agent","hablar con una persona","hablar con un humano","agente humano","persona real"}',
  hitl_max_bot_turns smallint,
  hitl_low_rating_threshold smallint,
  -- normalised when the configuration is written, not per message (issue 11)
  hitl_keywords_normalized text[] not null generated always as (private.normalize_phrases(hitl_keywords)) stored,
  hitl_human_request_phrases_normalized text[] not null
    generated always as (private.normalize_phrases(hitl_human_request_phrases)) stored,
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint chatbots_pkey primary key (company_id, id),
  constraint chatbots_company_name_key unique (company_id, name),
  constraint chatbots_company_fkey foreign key (company_id)
    references public.companies (id) on delete cascade,
  constraint chatbots_template_fkey foreign key (template_code)
    references public.chatbot_templates (code) on delete set null, -- global key, no company_id: SET NULL is allowed
  constraint chatbots_created_by_fkey foreign key (company_id, created_by)
    references public.users (company_id, id) on delete no action,
  constraint chatbots_name_length_check check (char_length(btrim(name)) between 1 and 100),
  constraint chatbots_description_length_check check (char_length(description) <= 2000),
  constraint chatbots_system_prompt_length_check check (char_length(btrim(system_prompt)) between 1 and 20000),
  constraint chatbots_channels_check check (private.channel_list_is_valid(channels)),
  constraint chatbots_hitl_keywords_check check (private.phrase_list_is_valid(hitl_keywords)),
  constraint chatbots_hitl_human_request_phrases_check check (private.phrase_list_is_valid(hitl_human_request_phrases)),
  constraint chatbots_hitl_max_bot_turns_range_check check (hitl_max_bot_turns between 1 and 100),
  constraint chatbots_hitl_low_rating_threshold_range_check check (hitl_low_rating_threshold between 1 and 5)
);

comment on table public.chatbots is
  'AI chatbots of a company (tenant table). Counted against the plan''s max_chatbots via companies.current_chatbot_count. '
  'Owner/administrador: full access; supervisor: read all; operador: read assigned chatbots only.'{{ doctor_notes('public.chatbots') }};
comment on column public.chatbots.company_id is 'Owning company (tenant key).';
comment on column public.chatbots.id is 'Chatbot id, unique within the company.';
comment on column public.chatbots.name is 'Display name, 1-100 characters, unique within the company.';
comment on column public.chatbots.description is 'Free description for the dashboard, up to 2000 characters.';
comment on column public.chatbots.system_prompt is 'System prompt given to the language model, 1-20000 characters.';
comment on column public.chatbots.template_code is 'Preset the chatbot was created from (public.chatbot_templates), null when built from scratch or the preset was deleted (the chatbot keeps its copied settings).';
comment on column public.chatbots.channels is 'Channels the chatbot is published on: non-empty, no duplicates. New conversations must use one of them.';
comment on column public.chatbots.is_active is 'Inactive chatbots keep their history but accept no new conversations.';
comment on column public.chatbots.hitl_enabled is 'Master switch of automatic human-in-the-loop escalation for this chatbot.';
comment on column public.chatbots.hitl_keywords is 'Keywords/phrases (whole words, case-insensitive) that escalate a conversation when an end user writes them (reason keyword).';
comment on column public.chatbots.hitl_human_request_phrases is 'Phrases meaning the end user asks for a human (whole words, case-insensitive); escalate with reason human_request.';
comment on column public.chatbots.hitl_max_bot_turns is 'Escalate after this many consecutive bot answers without resolution (reason bot_turns); null = disabled.';
comment on column public.chatbots.hitl_low_rating_threshold is 'Escalate when an end user rates a bot answer at or below this score 1-5 (thumbs_down counts as 1, thumbs_up as 5); null = disabled.';
comment on column public.chatbots.hitl_keywords_normalized is 'hitl_keywords normalised for matching (private.normalize_phrases), in the same order; generated, never written directly.';
comment on column public.chatbots.hitl_human_request_phrases_normalized is 'hitl_human_request_phrases normalised for matching (private.normalize_phrases), in the same order; generated, never written directly.';
comment on column public.chatbots.created_by is 'User who created the chatbot (set from the caller''s identity); null when created by the backend or after that user was deleted.';
comment on column public.chatbots.created_at is 'Creation time.';
comment on column public.chatbots.updated_at is 'Last change, maintained by private.touch_updated_at().';

-- Identity columns the caller must not choose: created_by comes from the session,
-- company_id and created_by never change after insert.
create function private.chatbots_before_write()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id uuid := private.get_current_user_id();
begin
  if tg_op = 'INSERT' then
    if v_user_id is not null then
      new.created_by := v_user_id;
    end if;
  else
    if new.created_by is not null then
      new.created_by := old.created_by; -- may only be cleared (user deletion), never re-pointed
    end if;
  end if;
  return new;
end
$$;
comment on function private.chatbots_before_write() is
  'Trigger: stamps created_by with the calling user on insert; keeps created_by immutable except for clearing it on update (company_id: chatbots_0_tenant_key).';

create trigger chatbots_before_write
  before insert or update on public.chatbots
  for each row execute function private.chatbots_before_write();
comment on trigger chatbots_before_write on public.chatbots is 'Stamps created_by; keeps tenant and creator immutable.';

create trigger chatbots_touch_updated_at
  before update on public.chatbots
  for each row execute function private.touch_updated_at();
comment on trigger chatbots_touch_updated_at on public.chatbots is 'Keeps updated_at current.';

-- Plan limit: +1 per created chatbot, -1 per deleted one, on the company's live counter.
-- consume_quota raises NA001 when the plan's max_chatbots would be exceeded.
create function private.chatbots_count_quota()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    perform private.consume_quota(new.company_id, 'current_chatbot_count', 1);
  elsif exists (select from public.companies c where c.id = old.company_id) then
    -- skipped when the whole company is being deleted (cascade): nothing left to count
    perform private.consume_quota(old.company_id, 'current_chatbot_count', -1);
  end if;
  return null;
end
$$;
comment on function private.chatbots_count_quota() is
  'Trigger: keeps companies.current_chatbot_count exact and enforces the plan''s max_chatbots (NA001) via private.consume_quota().';

create trigger chatbots_count_quota
  after insert or delete on public.chatbots
  for each row execute function private.chatbots_count_quota();
comment on trigger chatbots_count_quota on public.chatbots is 'Plan chatbot limit and live chatbot counter.';

revoke execute on function private.chatbots_before_write() from public, anon, authenticated;
revoke execute on function private.chatbots_count_quota() from public, anon, authenticated;

-- Tenant guard: fires first (see schema/0060_tenant_guard.sql).
{{ tenant_guard('public.chatbots') }}

-- Audit trail (private.audit_row_change, schema/0050_audit_trail.sql).
create trigger chatbots_audit
  after insert or update or delete on public.chatbots
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at,current_*,last_*');
comment on trigger chatbots_audit on public.chatbots is 'Audits chatbot configuration changes.';

-- A member can be removed while the history stays (private.clear_user_reference).
create trigger users_clear_chatbots_references
  before delete on public.users
  for each row execute function private.clear_user_reference('public.chatbots', 'created_by');
comment on trigger users_clear_chatbots_references on public.users is
  'Clears chatbots.created_by (creator) before a member is deleted.';
