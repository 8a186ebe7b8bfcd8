-- Rollback of 4010_hardening_escalation_reason: back to the 1050 definition
-- (reason read from the neurant.hitl_reason setting at any trigger depth).
create or replace function private.conversations_log_escalation()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_reason text := coalesce(pg_catalog.current_setting('neurant.hitl_reason', true), '');
begin
  if new.is_hitl_active and (tg_op = 'INSERT' or not old.is_hitl_active) then
    insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason, detail, escalated_by)
    values (new.company_id, new.id, new.chatbot_id,
            coalesce(nullif(v_reason, ''), 'manual')::public.hitl_escalation_reason,
            pg_catalog.left(coalesce(pg_catalog.current_setting('neurant.hitl_detail', true), ''), 500),
            case when v_reason = '' then public.get_current_user_id() end);
  end if;
  return null;
end
$$;
comment on function private.conversations_log_escalation() is
  'Trigger: records a public.hitl_escalations row whenever a conversation enters human mode (reason from escalate_conversation, else manual).';
revoke execute on function private.conversations_log_escalation() from public, anon, authenticated;
