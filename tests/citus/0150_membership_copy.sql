-- Profile citus: the membership copy private.memberships (a reference table the policy
-- helpers read from the shards) is written only by coordinator-side code, before the
-- public.users row it mirrors (schema/0150, functions/0320, 0330, 0340): no trigger of a
-- distributed table writes it, users_membership_copy refuses a write of public.users that
-- does not match it, and every membership RPC leaves both equal. Run by
-- tests/test_citus_profile.py on a database migrated with --profile citus.
-- rule: membership-copy-citus (docs/rules.md)
begin;
select plan(38);

-- pg_temp helpers, created as superuser (client roles may not create temp objects).
-- copy_mismatches(): rows of public.users and private.memberships without their twin.
create function pg_temp.copy_mismatches() returns integer
language sql as $$
  select ((select count(*) from (
             select auth_user_id, company_id, id, role, is_active from public.users
             except
             select auth_user_id, company_id, id, role, is_active from private.memberships) d)
        + (select count(*) from (
             select auth_user_id, company_id, id, role, is_active from private.memberships
             except
             select auth_user_id, company_id, id, role, is_active from public.users) d))::integer
$$;
-- refusal(sql): runs sql as the current identity, always rolled back: 'ok' or
-- '<sqlstate>: <message> / <hint>'.
create function pg_temp.refusal(p_sql text) returns text
language plpgsql as $$
declare
  v text;
  v_state text;
  v_hint text;
begin
  begin
    execute p_sql;
    v := 'ok';
    raise exception using errcode = 'NX998';
  exception
    when sqlstate 'NX998' then null;
    when others then
      get stacked diagnostics v_state = returned_sqlstate, v_hint = pg_exception_hint;
      v := v_state || ': ' || sqlerrm || ' / ' || coalesce(v_hint, '');
  end;
  return v;
end
$$;
create temp table t_tokens (label text primary key, invitation_id uuid, token text);
grant all on t_tokens to public;

-- The shape -----------------------------------------------------------------------------
select is(array(
  select format('%s on %s', t.tgname, t.tgrelid::regclass) collate "C"
    from pg_trigger t
    join pg_proc p on p.oid = t.tgfoid
    join private.citus_layout l on l.relation = t.tgrelid and l.placement = 'distributed'
   where not t.tgisinternal
     and p.prosrc ~* '\m(insert\s+into|update|delete\s+from)\s+private\.memberships\M'
   order by 1),
  '{}'::text[],
  'no trigger of a distributed table writes the membership copy (a shard cannot write a reference table)');
select is(array(
  select t.tgname::text collate "C" from pg_trigger t
   where t.tgrelid = 'public.users'::regclass and t.tgfoid = 'private.users_membership_copy()'::regprocedure
     and (t.tgtype & 2) <> 0 and (t.tgtype & 28) = 28),
  array['users_membership_copy'] collate "C",
  'a before insert, update and delete trigger of public.users checks every write against the copy');
select is(pg_temp.copy_mismatches(), 0,
  'private.memberships mirrors the membership columns of public.users (the fixtures write the copy first)');

-- Direct writes of the membership columns are refused, with the RPC to use -------------------
select tests.act_as('A', 'administrador');
select is(pg_temp.refusal($$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$),
  '42501: the role and active state of a member change only through the membership RPCs on profile citus'
  || ' / Call public.set_member_role(user_id, role), public.set_member_active(user_id, is_active) or'
  || ' public.transfer_ownership(user_id); the backend (service_role) updates private.memberships first,'
  || ' in the same transaction.',
  'a direct role update of a member is refused, and the hint names the RPC to call');
select is(pg_temp.refusal($$ select tests.member_delete('public.users', $d$ id = tests.user_id('A', 'operador') $d$) $$),
  '42501: a member is removed only through public.remove_member on profile citus'
  || ' / Call public.remove_member(user_id); the backend (service_role) deletes the member''s private.memberships'
  || ' row first, in the same transaction (before deleting the company, all of its rows).',
  'a direct delete of a member is refused, and the hint names public.remove_member');
select tests.act_as('A', 'owner');
select is(tests.attempt($$ update public.users set is_active = false where id = tests.user_id('A', 'supervisor') $$),
  '42501: the role and active state of a member change only through the membership RPCs on profile citus',
  'a direct deactivation of a member is refused');
select is(tests.attempt_as('service_role', $$ update public.users set role = 'supervisor' where id = tests.user_id('A', 'operador') $$),
  '42501: the role and active state of a member change only through the membership RPCs on profile citus',
  'service_role cannot change a role without writing the copy first either');
select is(tests.attempt_as('service_role', format(
    'insert into public.users (company_id, auth_user_id, email, role) values (%L, %L, %L, ''operador'')',
    tests.company_id('A'), tests.no_company_auth_id(), 'nocompany@example.com')),
  '42501: a member joins only through create_company_with_owner or accept_invitation on profile citus',
  'a member inserted without its copy is refused, even for service_role');
select is(tests.attempt_as('service_role', format(
    'delete from public.companies where id = %L', tests.company_id('B'))),
  '42501: a member is removed only through public.remove_member on profile citus',
  'a company whose members still have their copies cannot be deleted (its members would lose their rows only)');
select tests.act_as('A', 'operador');
select is(tests.affected_rows($$ update public.users set full_name = 'Oscar O.' where id = tests.user_id('A', 'operador') $$),
  1::bigint, 'a member still updates its own name directly (not a membership column)');
select tests.act_as_service();
select is(tests.affected_rows($$ update public.users set last_seen_at = now() where company_id = tests.company_id('A') $$),
  4::bigint, 'the backend still writes the bookkeeping columns of members directly');
select tests.act_as_superuser();

-- The rules of the RPCs are the rules of a direct change elsewhere ----------------------------
select tests.act_as('A', 'administrador');
select throws_ok($$ select public.set_member_role(tests.user_id('A', 'operador'), 'administrador') $$,
  '42501', 'a administrador cannot grant the role administrador (at or above their own)',
  'an administrador cannot grant a role at or above their own through set_member_role');
select throws_ok($$ select public.set_member_active(tests.user_id('A', 'owner'), false) $$,
  '42501', 'a administrador cannot change a member of rank owner',
  'an administrador cannot deactivate the owner');
select throws_ok($$ select public.remove_member(tests.user_id('A', 'administrador')) $$,
  '42501', 'you cannot change your own role, company or active state',
  'nobody removes themselves through remove_member');
select tests.act_as_superuser();
select is(tests.same_either_way('administrador', $$ select public.remove_member($1) $$, array[tests.user_id('B', 'operador')]),
  'same: 22023: member not found',
  'a member of another company answers exactly like a member that does not exist');
select tests.act_as('A', 'supervisor');
select throws_ok($$ select public.set_member_role(tests.user_id('A', 'operador'), 'operador') $$,
  '42501', 'only an owner or administrador can change or remove members',
  'a supervisor cannot change members through the RPCs');
select tests.act_as('A', 'owner');
select throws_ok($$ select public.set_member_role(tests.user_id('A', 'administrador'), 'owner') $$,
  '42501', 'a owner cannot grant the role owner (at or above their own)',
  'not even the owner grants the owner role (ownership moves only with transfer_ownership)');
select tests.act_as_superuser();
update public.companies set subscription_status = 'suspended' where id = tests.company_id('A');
select tests.act_as('A', 'administrador');
select throws_ok($$ select public.set_member_active(tests.user_id('A', 'operador'), false) $$,
  'NA002', 'company is read-only: its subscription is suspended',
  'a read-only company changes no member through the RPCs');
select tests.act_as_superuser();
update public.companies set subscription_status = 'active' where id = tests.company_id('A');

-- Each RPC leaves the copy equal to public.users ---------------------------------------------
select tests.act_as_no_company();
select lives_ok($$ select public.create_company_with_owner('C Company') $$,
  'an identity without a company creates one through create_company_with_owner');
select tests.act_as_superuser();
select is(array[pg_temp.copy_mismatches()::text,
                (select m.role::text from private.memberships m where m.auth_user_id = tests.no_company_auth_id())],
  array['0', 'owner'], 'create_company_with_owner writes the owner''s copy with the users row');

select tests.new_auth_user('joiner.citus@example.com');
select tests.act_as('A', 'owner');
insert into t_tokens select 'join', * from public.create_invitation('joiner.citus@example.com', 'operador');
insert into t_tokens select 'taken', * from public.create_invitation('nocompany@example.com', 'operador');
select tests.act_as_email('joiner.citus@example.com');
select lives_ok($$ select public.accept_invitation((select token from t_tokens where label = 'join')) $$,
  'an invited identity joins through accept_invitation');
select tests.act_as_superuser();
select is(array[pg_temp.copy_mismatches()::text,
                (select m.company_id::text from private.memberships m where m.auth_user_id = tests.auth_id_of('joiner.citus@example.com'))],
  array['0', tests.company_id('A')::text], 'accept_invitation writes the new member''s copy with the users row');

-- One membership per identity -----------------------------------------------------------------
select tests.act_as_auth(tests.no_company_auth_id());
select throws_ok($$ select public.accept_invitation((select token from t_tokens where label = 'taken')) $$,
  '42501', 'caller already belongs to a company',
  'an identity that owns a company cannot accept an invitation into another (a second membership)');
select is(tests.attempt_as('service_role', format(
    'insert into private.memberships (auth_user_id, company_id, id, role, is_active) values (%L, %L, gen_random_uuid(), ''operador'', true)',
    tests.auth_id('A', 'operador'), tests.company_id('B'))),
  '23505: duplicate key value violates unique constraint "memberships_pkey"',
  'an auth identity has one membership across companies, whoever writes the copy (memberships_pkey)');

select tests.act_as('A', 'administrador');
select lives_ok($$ select public.set_member_role(tests.user_id('A', 'supervisor'), 'operador') $$,
  'an administrador demotes a supervisor through set_member_role');
select tests.act_as_superuser();
select is(array[pg_temp.copy_mismatches()::text,
                (select m.role::text from private.memberships m where m.id = tests.user_id('A', 'supervisor'))],
  array['0', 'operador'], 'set_member_role changes the copy and the users row together');
select tests.act_as('A', 'supervisor');
select is(array[private.get_user_role()::text,
                (select count(*) from public.conversations where company_id = tests.company_id('A'))::text],
  array['operador', '0'],
  'a demoted member has the new role on its next statement (an operador without chatbots reads no conversation)');

select tests.act_as('A', 'owner');
select lives_ok($$ select public.set_member_active(tests.user_id('A', 'administrador'), false) $$,
  'the owner deactivates an administrador through set_member_active');
select tests.act_as_superuser();
select is(array[pg_temp.copy_mismatches()::text,
                (select m.is_active::text from private.memberships m where m.id = tests.user_id('A', 'administrador'))],
  array['0', 'false'], 'set_member_active changes the copy and the users row together');
select tests.act_as('A', 'administrador');
select is(array[coalesce(private.get_user_company_id()::text, 'none'),
                (select count(*) from public.users)::text, (select count(*) from public.messages)::text],
  array['none', '0', '0'], 'a deactivated member resolves to no company and reads nothing on its next statement');

select tests.act_as('A', 'owner');
select lives_ok($$ select public.remove_member(tests.user_id('A', 'operador')) $$,
  'the owner removes an operador through remove_member');
select tests.act_as_superuser();
select is(array[pg_temp.copy_mismatches()::text,
                (select count(*) from private.memberships m where m.id = tests.user_id('A', 'operador'))::text,
                (select current_user_count from public.companies where id = tests.company_id('A'))::text],
  array['0', '0', '4'], 'remove_member deletes the copy with the users row (the seat is freed)');
select tests.act_as_auth(tests.auth_id('A', 'operador')); -- the identity is still signed in
select is(array[coalesce(private.get_user_company_id()::text, 'none'),
                ((select count(*) from public.conversations) + (select count(*) from public.messages))::text],
  array['none', '0'], 'a removed member reads nothing on its next statement');

select tests.act_as('A', 'owner');
select lives_ok($$ select public.transfer_ownership(tests.user_id('A', 'supervisor')) $$,
  'the owner hands ownership to another active member');
select tests.act_as_superuser();
select is(array(select m.role::text || ':' || (m.id = tests.user_id('A', 'owner'))::text from private.memberships m
                 where m.company_id = tests.company_id('A') and m.role in ('owner', 'administrador') order by m.role, m.is_active),
  array['owner:false', 'administrador:false', 'administrador:true'],
  'transfer_ownership moves the owner role in the copy too (one owner, the old one administrador)');
select is(pg_temp.copy_mismatches(), 0, 'transfer_ownership changes the copy and both users rows together');

-- Deleting a company: the backend deletes the copies first ------------------------------------
select tests.act_as_service();
select is(tests.delete_companies(array(select id from public.companies where name = 'C Company')), 1::bigint,
  'the backend deletes a company after deleting its members'' copies, in one transaction');
select tests.act_as_superuser();
select is(array[pg_temp.copy_mismatches()::text,
                (select count(*) from private.memberships where auth_user_id = tests.no_company_auth_id())::text],
  array['0', '0'], 'a deleted company leaves no membership copy behind (its owner may join elsewhere)');

select * from finish();
rollback;
