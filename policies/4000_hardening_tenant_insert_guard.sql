-- Why: hardening finding H-1 (tests/pgtap/4000_hardening_*.sql). BEFORE ROW
-- triggers run before the RLS WITH CHECK of an INSERT, and several of them are
-- security definer and look rows up by the *proposed* company_id. A caller
-- could therefore propose another company's id and learn about its rows from
-- the trigger's error instead of getting the RLS refusal:
--   * conversations: "channel telegram is not enabled for chatbot <B's id>
--     (enabled: {web,whatsapp})", "chatbot <id> is inactive", "operador <id> is
--     not assigned to chatbot <id>" (existence, channels, state, assignments);
--   * chatbot_operators: "user <B's id> is supervisor" (existence and role);
--   * messages, for an authenticated identity without a company: "conversation
--     <B's id> is closed" / "... is in status active" (existence and status).
-- The fix: a tenant guard that fires FIRST (trigger names sort before every
-- other trigger of the table: "<table>_0_tenant_guard") on every tenant table
-- that authenticated may insert into, refusing a row of another company with
-- exactly the error RLS would give, before any lookup happens. The outcome is
-- then the same whether or not the referenced rows exist.

create function private.reject_other_tenant_insert()
returns trigger
language plpgsql
volatile
security invoker -- must run as the caller: caller_is_subject_to_rls() looks at current_user
set search_path = ''
as $$
begin
  if private.caller_is_subject_to_rls()
     and new.company_id is distinct from public.get_user_company_id() then
    raise exception using errcode = '42501',
      message = format('new row violates row-level security policy for table "%s"', tg_table_name),
      hint = 'Rows can only be written in your own company.';
  end if;
  return new;
end;
$$;
comment on function private.reject_other_tenant_insert() is
  'Trigger (before insert, fires first): a caller subject to RLS (authenticated) may only propose rows of its own company; anything else fails with the RLS error (42501) before any other trigger can look at, or report on, another company''s rows. Security invoker on purpose.';
revoke execute on function private.reject_other_tenant_insert() from public, anon, authenticated;

create trigger chatbots_0_tenant_guard
  before insert on public.chatbots
  for each row execute function private.reject_other_tenant_insert();
create trigger chatbot_operators_0_tenant_guard
  before insert on public.chatbot_operators
  for each row execute function private.reject_other_tenant_insert();
create trigger conversations_0_tenant_guard
  before insert on public.conversations
  for each row execute function private.reject_other_tenant_insert();
create trigger messages_0_tenant_guard
  before insert on public.messages
  for each row execute function private.reject_other_tenant_insert();
create trigger message_reactions_0_tenant_guard
  before insert on public.message_reactions
  for each row execute function private.reject_other_tenant_insert();
create trigger documents_0_tenant_guard
  before insert on public.documents
  for each row execute function private.reject_other_tenant_insert();
create trigger document_chunks_0_tenant_guard
  before insert on public.document_chunks
  for each row execute function private.reject_other_tenant_insert();
create trigger integrations_0_tenant_guard
  before insert on public.integrations
  for each row execute function private.reject_other_tenant_insert();

comment on trigger chatbots_0_tenant_guard on public.chatbots is
  'Fires first: members insert only into their own company (RLS error otherwise), before any lookup trigger runs.';
comment on trigger chatbot_operators_0_tenant_guard on public.chatbot_operators is
  'Fires first: no assignment row of another company reaches chatbot_operators_before_write (it would reveal the user''s role).';
comment on trigger conversations_0_tenant_guard on public.conversations is
  'Fires first: no conversation of another company reaches conversations_guard_transition (it would reveal chatbot channels/state and assignments).';
comment on trigger messages_0_tenant_guard on public.messages is
  'Fires first: no message of another company reaches messages_before_insert (it would reveal a conversation''s existence and status).';
comment on trigger message_reactions_0_tenant_guard on public.message_reactions is
  'Fires first: members react only inside their own company.';
comment on trigger documents_0_tenant_guard on public.documents is
  'Fires first: members upload only into their own company.';
comment on trigger document_chunks_0_tenant_guard on public.document_chunks is
  'Fires first: members add chunks only inside their own company.';
comment on trigger integrations_0_tenant_guard on public.integrations is
  'Fires first: members create integrations only in their own company.';
