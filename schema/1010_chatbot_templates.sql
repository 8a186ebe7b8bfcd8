-- Why: industry presets a chatbot can be created from (seed section 2, "Chatbot Templates").
-- They are platform-wide reference data, not tenant data: a global table without a tenant
-- key (a Citus reference table), readable by every authenticated user, written only by
-- service_role / migrations (seeds/1900).

create table public.chatbot_templates (
  code text not null,
  name text not null,
  industry text not null,
  description text not null default '',
  system_prompt text not null,
  default_channels public.channel_type[] not null default '{web}',
  hitl_keywords text[] not null default '{}',
  hitl_human_request_phrases text[] not null default '{}',
  hitl_max_bot_turns smallint,
  hitl_low_rating_threshold smallint,
  is_active boolean not null default true,
  sort_order integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint chatbot_templates_pkey primary key (code),
  constraint chatbot_templates_code_format_check check (code ~ '^[a-z][a-z0-9_]{1,62}$'),
  constraint chatbot_templates_name_length_check check (char_length(btrim(name)) between 1 and 100),
  constraint chatbot_templates_industry_length_check check (char_length(btrim(industry)) between 1 and 100),
  constraint chatbot_templates_description_length_check check (char_length(description) <= 2000),
  constraint chatbot_templates_system_prompt_length_check check (char_length(btrim(system_prompt)) between 1 and 20000),
  constraint chatbot_templates_default_channels_check check (private.channel_list_is_valid(default_channels)),
  constraint chatbot_templates_hitl_keywords_check check (private.phrase_list_is_valid(hitl_keywords)),
  constraint chatbot_templates_hitl_human_request_phrases_check check (private.phrase_list_is_valid(hitl_human_request_phrases)),
  constraint chatbot_templates_hitl_max_bot_turns_range_check check (hitl_max_bot_turns between 1 and 100),
  constraint chatbot_templates_hitl_low_rating_threshold_range_check check (hitl_low_rating_threshold between 1 and 5)
);

comment on table public.chatbot_templates is
  'Global (non-tenant) industry presets for new chatbots: prompt, channels and HITL escalation defaults. Read by every authenticated user; written by service_role only.';
comment on column public.chatbot_templates.code is 'Stable identifier of the preset (snake_case), referenced by public.chatbots.template_code.';
comment on column public.chatbot_templates.name is 'Display name of the preset.';
comment on column public.chatbot_templates.industry is 'Industry the preset targets (e-commerce, healthcare, real estate, ...).';
comment on column public.chatbot_templates.description is 'What the preset is for, shown in the template picker.';
comment on column public.chatbot_templates.system_prompt is 'System prompt copied into a chatbot created from the preset.';
comment on column public.chatbot_templates.default_channels is 'Channels a chatbot created from the preset starts with.';
comment on column public.chatbot_templates.hitl_keywords is 'HITL keywords copied into the chatbot (an end-user message containing one escalates to a human).';
comment on column public.chatbot_templates.hitl_human_request_phrases is 'Phrases meaning "I want a human", copied into the chatbot.';
comment on column public.chatbot_templates.hitl_max_bot_turns is 'Bot turns without resolution before escalation, copied into the chatbot; null = disabled.';
comment on column public.chatbot_templates.hitl_low_rating_threshold is 'End-user rating (1-5) at or below which a bot answer escalates, copied into the chatbot; null = disabled.';
comment on column public.chatbot_templates.is_active is 'Inactive presets are kept for existing chatbots but cannot be used for new ones.';
comment on column public.chatbot_templates.sort_order is 'Display order in the template picker (ascending).';
comment on column public.chatbot_templates.created_at is 'When the preset was created.';
comment on column public.chatbot_templates.updated_at is 'Last change, maintained by private.touch_updated_at().';

create trigger chatbot_templates_touch_updated_at
  before update on public.chatbot_templates
  for each row execute function private.touch_updated_at();
comment on trigger chatbot_templates_touch_updated_at on public.chatbot_templates is 'Keeps updated_at current.';
