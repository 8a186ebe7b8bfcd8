-- Why: hardening finding H-2 (tests/pgtap/4000_hardening_privilege_escalation.sql).
-- private.conversations_log_escalation() took the escalation reason and detail
-- from the custom settings neurant.hitl_reason / neurant.hitl_detail, which
-- ANY session can set (set_config on a custom GUC needs no privilege). A
-- supervisor or operador could therefore escalate a conversation by hand and
-- log it as an automatic "keyword" escalation with a made-up detail and no
-- escalated_by: a forged, unattributed entry in the HITL log.
-- The fix: the reason is honoured only when the status change comes from
-- inside another trigger (pg_trigger_depth() > 1), i.e. from
-- private.escalate_conversation() called by the message/reaction triggers. A
-- direct UPDATE of conversations (trigger depth 1) is always logged as
-- 'manual', attributed to the calling user.

create or replace function private.conversations_log_escalation()
returns trigger
language plpgsql
security definer
set search_path = ''
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
