-- Existence and privileges of the tenancy domain: RLS forced, self-documenting
-- catalog (comments), internal helpers not callable, company column grants, auth
-- surface. Catalog-wide checks (security definer functions, anon) are 0010.
begin;
select plan(9);

select is(
    array(select c.relname::text from pg_class c
           where c.oid in ('public.subscription_plans'::regclass, 'public.companies'::regclass,
                           'public.users'::regclass, 'public.user_invitations'::regclass)
             and not (c.relrowsecurity and c.relforcerowsecurity) order by 1),
    '{}'::text[], 'every tenancy table has row level security enabled and forced');

select is(
    array(select format('%s.%s', c.relname, a.attname) from pg_class c join pg_attribute a on a.attrelid = c.oid
           where c.oid in ('public.subscription_plans'::regclass, 'public.companies'::regclass,
                           'public.users'::regclass, 'public.user_invitations'::regclass)
             and a.attnum > 0 and not a.attisdropped
             and (col_description(c.oid, a.attnum) is null or obj_description(c.oid, 'pg_class') is null) order by 1),
    '{}'::text[], 'every tenancy table and column has a comment');

select is(
    array(select f from unnest(array['role_rank', 'get_current_user_id', 'get_user_company_id', 'get_user_role',
                               'create_company_with_owner', 'create_invitation', 'accept_invitation', 'revoke_invitation',
                               'transfer_ownership', 'consume_quota', 'touch_updated_at',
                               'caller_is_subject_to_rls', 'companies_guard_update', 'users_guard_update',
                               'clear_user_reference', 'users_count_members', 'users_require_owner',
                               'user_invitations_guard_update', 'user_invitations_count_pending', 'guard_role_grant']) f
           where not exists (select 1 from pg_proc p
                              where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
                                and p.proname = f and obj_description(p.oid, 'pg_proc') is not null)
           order by 1),
    '{}'::text[], 'every tenancy function exists and has a comment');

select is(
    array(select format('%s on %s', pol.polname, pol.polrelid::regclass) from pg_policy pol
           where pol.polrelid in ('public.subscription_plans'::regclass, 'public.companies'::regclass,
                                  'public.users'::regclass, 'public.user_invitations'::regclass)
             and obj_description(pol.oid, 'pg_policy') is null order by 1),
    '{}'::text[], 'every tenancy policy has a comment');

select is(
    array(select t.typname::text from pg_type t
           where t.oid in ('public.user_role'::regtype, 'public.subscription_status'::regtype, 'public.invitation_status'::regtype)
             and obj_description(t.oid, 'pg_type') is null),
    '{}'::text[], 'every tenancy enum has a comment');

select ok(not has_function_privilege('authenticated', 'private.consume_quota(uuid, text, bigint)', 'execute'),
    'authenticated cannot call private.consume_quota directly');

select is(
    array(select a.attname::text from pg_attribute a
           where a.attrelid = 'public.companies'::regclass and a.attnum > 0
             and has_column_privilege('authenticated', a.attrelid, a.attnum, 'update') order by 1),
    array['industry', 'name'],
    'members may update only the company profile columns');

do $$ begin perform set_config('request.jwt.claim.sub', tests.auth_id('A', 'owner')::text, true); end $$;
select is(auth.uid(), tests.auth_id('A', 'owner'), 'auth.uid() reads the legacy request.jwt.claim.sub');
do $$ begin
    perform set_config('request.jwt.claim.sub', '', true);
    perform set_config('request.jwt.claims', jsonb_build_object('sub', tests.auth_id('B', 'owner'), 'role', 'authenticated',
                                                  'email', 'owner.b@example.com')::text, true);
end $$;
select results_eq(
    $$ select auth.uid()::text, auth.role(), auth.email(), auth.jwt() ->> 'email' $$,
    $$ values (tests.auth_id('B', 'owner')::text, 'authenticated', 'owner.b@example.com', 'owner.b@example.com') $$,
    'auth.uid(), auth.role(), auth.email() and auth.jwt() read request.jwt.claims');

select * from finish();
rollback;
