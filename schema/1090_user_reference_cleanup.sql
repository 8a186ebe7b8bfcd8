-- Why: the optional "who" references of the chatbot/conversation domains (creator,
-- assigner, assigned operator, message author, reviewer, escalator) point at
-- public.users with tenant-consistent FKs, which must not use ON DELETE SET NULL
-- (Citus; CONVENTIONS). This before-delete trigger clears them so a user can be removed
-- while the history stays.

create function private.users_clear_chatbot_references()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- While the whole company is being deleted its rows go by cascade anyway; an
  -- UPDATE here would re-check their FK against the company already gone.
  if not exists (select 1 from public.companies where id = old.company_id) then
    return old;
  end if;
  update public.chatbots set created_by = null
   where company_id = old.company_id and created_by = old.id;
  update public.chatbot_operators set assigned_by = null
   where company_id = old.company_id and assigned_by = old.id;
  update public.conversations set assigned_operator_id = null
   where company_id = old.company_id and assigned_operator_id = old.id;
  update public.messages set sender_id = null
   where company_id = old.company_id and sender_id = old.id;
  update public.message_reactions set created_by = null
   where company_id = old.company_id and created_by = old.id;
  update public.hitl_escalations set escalated_by = null
   where company_id = old.company_id and escalated_by = old.id;
  return old;
end
$$;
comment on function private.users_clear_chatbot_references() is
  'Trigger: before a user is deleted, clears the nullable references to it in chatbots, chatbot_operators, conversations, messages, message_reactions and hitl_escalations.';
revoke execute on function private.users_clear_chatbot_references() from public, anon, authenticated;

create trigger users_clear_chatbot_references
  before delete on public.users
  for each row execute function private.users_clear_chatbot_references();
comment on trigger users_clear_chatbot_references on public.users is 'Clears chatbot/conversation references to the deleted user (no SET NULL FKs on tenant keys).';
