-- Row Level Security and privileges of the tenancy tables, per the access
-- matrix of docs/access-matrix.md: plans readable by everyone; company, members and
-- invitations visible only inside the caller's company, writes by rank.
{% from 'policies/_rls.sql' import rls -%}

-- subscription_plans: global reference data ---------------------------------
{{ rls('public.subscription_plans') }}

create policy select_public_plans on public.subscription_plans
  for select to anon, authenticated
  using (is_public);
comment on policy select_public_plans on public.subscription_plans is
  'Everyone (anon included) reads the public plans.';

create policy select_own_plan on public.subscription_plans
  for select to authenticated{% if profile == 'citus' %}
  using (code = private.get_user_plan_code());{% else %}
  using (code = (select c.subscription_plan from public.companies c
          where c.id = (select private.get_user_company_id())));{% endif %}
comment on policy select_own_plan on public.subscription_plans is
  'Members also read their company''s plan when it is not public (custom deal). doctor: allow policy.permissive_overlap beside select_public_plans (anon reads that one too): two rules, each named, on a table of a few rows.';

-- companies ------------------------------------------------------------------
{{ rls('public.companies') }}

create policy select_own_company on public.companies
  for select to authenticated
  using (id = (select private.get_user_company_id()));
comment on policy select_own_company on public.companies is
  'Every member reads their own company.';

create policy update_own_company_as_admin on public.companies
  for update to authenticated
  using (id = (select private.get_user_company_id())
       and (select private.get_user_role()) in ('owner', 'administrador'))
  with check (id = (select private.get_user_company_id())
        and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy update_own_company_as_admin on public.companies is
  'Owner and administrador update their company''s profile (name, industry: column grants + companies_guard_update); plan and billing only via service_role.';

-- users ----------------------------------------------------------------------
{{ rls('public.users') }}

create policy select_same_company on public.users
  for select to authenticated
  using (company_id = (select private.get_user_company_id()));
comment on policy select_same_company on public.users is
  'Every member reads all members of their company.';

create policy update_self on public.users
  for update to authenticated
  using (company_id = (select private.get_user_company_id())
       and id = (select private.get_current_user_id()))
  with check (company_id = (select private.get_user_company_id())
        and id = (select private.get_current_user_id()));
comment on policy update_self on public.users is
  'A member updates their own row; users_guard_update limits it to full_name (no own role/active changes). doctor: allow policy.permissive_overlap beside update_lower_rank: two rules of the role hierarchy, each named (the trigger''s messages and the tests name them), on a rare write.';

create policy update_lower_rank on public.users
  for update to authenticated
  using (company_id = (select private.get_user_company_id())
       and (select private.get_user_role()) in ('owner', 'administrador')
       and public.role_rank(role) < public.role_rank((select private.get_user_role())))
  with check (company_id = (select private.get_user_company_id())
        and public.role_rank(role) < public.role_rank((select private.get_user_role())));
comment on policy update_lower_rank on public.users is
  'Owner and administrador update members of a lower rank (full_name, role, is_active), never to a role at or above their own.';

create policy delete_lower_rank on public.users
  for delete to authenticated
  using (company_id = (select private.get_user_company_id())
       and (select private.get_user_role()) in ('owner', 'administrador')
       and public.role_rank(role) < public.role_rank((select private.get_user_role())));
comment on policy delete_lower_rank on public.users is
  'Owner and administrador remove members of a lower rank.';

-- user_invitations -----------------------------------------------------------
{{ rls('public.user_invitations') }}

create policy select_as_admin on public.user_invitations
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
       and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on public.user_invitations is
  'Owner and administrador read their company''s invitations (created, accepted and revoked only through create_invitation / accept_invitation / revoke_invitation).';

-- audit_logs -----------------------------------------------------------------
-- Append-only for everyone: service_role may only select/insert; the trigger
-- private.audit_logs_append_only rejects update/delete/truncate for all.
{{ rls('public.audit_logs') }}

create policy select_as_admin on public.audit_logs
  for select to authenticated
  using (company_id = (select private.get_user_company_id())
       and (select private.get_user_role()) in ('owner', 'administrador'));
comment on policy select_as_admin on public.audit_logs is
  'Owner/administrador read their company''s audit trail; nobody updates or deletes it.';
