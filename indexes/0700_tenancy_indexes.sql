-- Indexes of the tenancy tables: every foreign key and every column a policy
-- or a hot lookup filters on, company_id first. (Primary keys, unique keys and
-- the rule indexes of 0120/0130 already cover users(company_id, id),
-- users(auth_user_id), users(company_id, email), user_invitations(token_hash).)
create index companies_subscription_plan_idx on public.companies (subscription_plan);
comment on index public.companies_subscription_plan_idx is 'FK companies -> subscription_plans (plan deletes, per-plan reports).';

create index companies_created_by_auth_user_id_idx on public.companies (created_by_auth_user_id);
comment on index public.companies_created_by_auth_user_id_idx is 'FK companies -> auth.users (identity deletion).';

create index users_company_id_invited_by_idx on public.users (company_id, invited_by);
comment on index public.users_company_id_invited_by_idx is 'FK users(company_id, invited_by) -> users; used when a member is removed.';

create index users_company_id_role_idx on public.users (company_id, role);
comment on index public.users_company_id_role_idx is 'Policies and listings filter members by role within a company.';

create index users_active_operators_idx on public.users (company_id, id) where role = 'operador' and is_active;
comment on index public.users_active_operators_idx is 'Active operators of a company (assignment screens, HITL routing).';

create index user_invitations_company_id_invited_by_idx on public.user_invitations (company_id, invited_by);
comment on index public.user_invitations_company_id_invited_by_idx is 'FK user_invitations(company_id, invited_by) -> users.';

create index user_invitations_company_id_accepted_by_idx on public.user_invitations (company_id, accepted_by);
comment on index public.user_invitations_company_id_accepted_by_idx is 'FK user_invitations(company_id, accepted_by) -> users.';

create index user_invitations_company_id_revoked_by_idx on public.user_invitations (company_id, revoked_by);
comment on index public.user_invitations_company_id_revoked_by_idx is 'FK user_invitations(company_id, revoked_by) -> users.';

create index user_invitations_pending_idx on public.user_invitations (company_id, expires_at) where status = 'pending';
comment on index public.user_invitations_pending_idx is 'Pending invitations of a company by expiry (listing, expiry sweep).';

-- audit_logs: a company's trail newest first, one row's history, one member's actions.
create index audit_logs_company_created_at_idx
  on public.audit_logs (company_id, created_at desc);
comment on index public.audit_logs_company_created_at_idx is 'Audit trail of a company, newest first; retention by age.';
create index audit_logs_company_table_row_idx
  on public.audit_logs (company_id, table_name, row_id, created_at desc);
comment on index public.audit_logs_company_table_row_idx is 'History of one row.';
create index audit_logs_company_actor_created_at_idx
  on public.audit_logs (company_id, actor_user_id, created_at desc) where actor_user_id is not null;
comment on index public.audit_logs_company_actor_created_at_idx is 'What one member did.';
