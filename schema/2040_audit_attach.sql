-- Why: attach the generic audit trigger (2030_audit) to every table whose
-- changes are security or configuration relevant: tenancy (companies, users,
-- invitations - helper domain 0200-0999), chatbots and operator assignments
-- (1000-1999), and this range's integrations, credentials and documents.
-- Bookkeeping-only updates (live counters, updated_at, last-seen stamps) are
-- not audited; secrets and token hashes are redacted by the trigger.

do $$
declare
  v_missing text;
begin
  select string_agg(t, ', ') into v_missing
    from unnest(array['public.companies', 'public.users', 'public.user_invitations',
                      'public.chatbots', 'public.chatbot_operators']) t
   where to_regclass(t) is null;
  if v_missing is not null then
    raise exception using errcode = '42P01',
      message = format('audit triggers need tables that do not exist: %s', v_missing),
      hint = 'Apply the tenancy (0200-0999) and chatbot (1000-1999) migrations first.';
  end if;
end;
$$;

create trigger companies_audit
  after insert or update or delete on public.companies
  for each row execute function private.audit_row_change('id', 'id', 'updated_at,current_*,last_*');
create trigger users_audit
  after insert or update or delete on public.users
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at,last_*');
create trigger user_invitations_audit
  after insert or update or delete on public.user_invitations
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at');
create trigger chatbots_audit
  after insert or update or delete on public.chatbots
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at,current_*,last_*');
create trigger chatbot_operators_audit
  after insert or update or delete on public.chatbot_operators
  for each row execute function private.audit_row_change('company_id', '', 'updated_at');
create trigger integrations_audit
  after insert or update or delete on public.integrations
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at,credentials_updated_at,has_credentials');
create trigger integration_credentials_audit
  after insert or update or delete on private.integration_credentials
  for each row execute function private.audit_row_change('company_id', 'company_id,integration_id', '');
create trigger documents_audit
  after insert or update or delete on public.documents
  for each row execute function private.audit_row_change('company_id', 'company_id,id', 'updated_at,chunk_count,processed_at');

comment on trigger companies_audit on public.companies is 'Audits company changes (counters and updated_at alone are not audited).';
comment on trigger users_audit on public.users is 'Audits membership and role changes.';
comment on trigger user_invitations_audit on public.user_invitations is 'Audits invitations (token_hash redacted).';
comment on trigger chatbots_audit on public.chatbots is 'Audits chatbot configuration changes.';
comment on trigger chatbot_operators_audit on public.chatbot_operators is 'Audits operator assignments.';
comment on trigger integrations_audit on public.integrations is 'Audits integration configuration changes.';
comment on trigger integration_credentials_audit on private.integration_credentials is 'Audits credential writes (ciphertext redacted; key_id and times kept).';
comment on trigger documents_audit on public.documents is 'Audits document uploads, edits and deletions.';
