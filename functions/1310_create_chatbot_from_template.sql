-- Why: "template-based initialisation with customisation" (seed section 2): one call
-- creates a chatbot of the caller's company pre-filled from an industry preset. Runs with
-- the caller's rights (security invoker), so the chatbots policies (owner/administrador)
-- and the plan's chatbot limit apply exactly as for a direct insert.

create function public.create_chatbot_from_template(p_template_code text, p_name text)
returns uuid
language plpgsql
volatile
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_company_id uuid := private.get_user_company_id();
  v_template public.chatbot_templates;
  v_id uuid;
begin
  if v_company_id is null then
    raise exception using errcode = '42501',
      message = 'create_chatbot_from_template requires a signed-in, active member of a company',
      hint = 'Call it as an authenticated owner or administrador.';
  end if;
  select t.* into v_template from public.chatbot_templates t where t.code = p_template_code;
  if not found or not v_template.is_active then
    raise exception using errcode = '22023',
      message = format('chatbot template %L does not exist or is inactive', p_template_code),
      hint = 'Pick an active code from public.chatbot_templates.';
  end if;
  insert into public.chatbots (company_id, name, description, system_prompt, template_code, channels,
                               hitl_keywords, hitl_human_request_phrases, hitl_max_bot_turns, hitl_low_rating_threshold)
  values (v_company_id, p_name, v_template.description, v_template.system_prompt, v_template.code, v_template.default_channels,
          v_template.hitl_keywords, v_template.hitl_human_request_phrases, v_template.hitl_max_bot_turns,
          v_template.hitl_low_rating_threshold)
  returning id into v_id;
  return v_id;
end
$$;
comment on function public.create_chatbot_from_template(text, text) is
  'Creates a chatbot named p_name in the caller''s company from an active template (prompt, channels, HITL settings) and returns its id. '
  'Owner/administrador only (RLS, 42501); 22023 for an unknown/inactive template; NA001 at the plan''s chatbot limit.';

revoke execute on function public.create_chatbot_from_template(text, text) from public, anon;
grant execute on function public.create_chatbot_from_template(text, text) to authenticated, service_role;
