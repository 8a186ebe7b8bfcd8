-- Catalog-wide hardening: rules that hold for every table, key, function or schema
-- at once (catalog-driven, so a new object is covered): tenant-consistent keys and the
-- tenant insert guard, what anon may execute, search_path of security definer
-- functions and shadowing, no path to secrets through references, views or
-- functions, and every RPC probed with another company's ids. Rules of one domain
-- live in that domain's file (see CONVENTIONS.md, Tests).
begin;
select plan(37 + (select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                    where n.nspname in ('public', 'private') and p.prokind in ('f', 'p')
                      and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e'))
                + 2 * (select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                        where n.nspname = 'public' and p.prokind = 'f' and p.prorettype <> 'trigger'::regtype
                          and has_function_privilege('authenticated', p.oid, 'EXECUTE')
                          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e'))
                + 3 * (select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace
                        where n.nspname in ('public', 'private', 'archive') and c.relkind in ('r', 'p')
                          and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id' and not a.attisdropped)));

-- rule: tenant-consistent-keys (docs/rules.md)
-- Structure: the keys make a cross-tenant row impossible by construction ------------
select is_empty($$
  select format('%s.%s', k.conrelid::regclass, k.conname)
    from pg_constraint k
   where k.contype = 'f'
     and exists (select 1 from pg_attribute a where a.attrelid = k.conrelid and a.attname = 'company_id' and not a.attisdropped)
     and exists (select 1 from pg_attribute a where a.attrelid = k.confrelid and a.attname = 'company_id' and not a.attisdropped)
     and not exists (
       select 1 from unnest(k.conkey, k.confkey) as m(src, dst)
         join pg_attribute sa on sa.attrelid = k.conrelid and sa.attnum = m.src
         join pg_attribute da on da.attrelid = k.confrelid and da.attnum = m.dst
        where sa.attname = 'company_id' and da.attname = 'company_id') $$,
  'every foreign key between two tenant tables maps company_id to company_id (a row can only point inside its own company)');

select is(array(
  select (i.indrelid::regclass::text || '.' || c.relname::text) collate "C" as k
    from pg_index i join pg_class c on c.oid = i.indexrelid
    join pg_class t on t.oid = i.indrelid join pg_namespace n on n.oid = t.relnamespace
   where n.nspname in ('public', 'private') and i.indisunique
     and exists (select 1 from pg_attribute a where a.attrelid = i.indrelid and a.attname = 'company_id' and not a.attisdropped)
     and not exists (select 1 from pg_attribute a where a.attrelid = i.indrelid and a.attname = 'company_id'
                      and a.attnum = any (i.indkey::int2[]))
   order by k),
  array['private.chatbot_visibility.chatbot_visibility_auth_user_id_key',
        'user_invitations.user_invitations_token_hash_key', 'users.users_auth_user_id_key'] collate "C",
  'the only unique keys of tenant tables without company_id are the auth identity (of a member and of its visible chatbots) and the invitation token hash (none writable by members)');

-- rule: tenant-insert-guard (docs/rules.md)
-- The tenant guard (finding H-1; schema/0060_tenant_guard.sql) --------------------------
select is_empty($$
  select c.oid::regclass::text
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('public', 'private') and c.relkind in ('r', 'p')
     and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id' and not a.attisdropped)
     and (has_table_privilege('authenticated', c.oid, 'INSERT')
          or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                      and has_column_privilege('authenticated', c.oid, a.attnum, 'INSERT')))
     and (select t.tgfoid from pg_trigger t
           where t.tgrelid = c.oid and not t.tgisinternal
             and (t.tgtype & 2) <> 0 and (t.tgtype & 4) <> 0 and (t.tgtype & 1) <> 0  -- before, insert, row
           order by t.tgname limit 1) is distinct from 'private.reject_other_tenant_insert()'::regprocedure $$,
  'every tenant table members may insert into runs the tenant guard as its first BEFORE INSERT trigger');

-- rule: tenant-key-immutable (docs/rules.md)
-- The tenant key is immutable, for every role (issue 9, finding 4) -------------------
select is_empty($$
  select c.oid::regclass::text
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('public', 'private', 'archive') and c.relkind in ('r', 'p')
     and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id' and not a.attisdropped)
     and not (exists (select 1 from pg_trigger t
                       where t.tgrelid = c.oid and not t.tgisinternal
                         and t.tgfoid = 'private.reject_other_tenant_insert()'::regprocedure
                         and (t.tgtype & 1) <> 0 and (t.tgtype & 2) <> 0 and (t.tgtype & 4) <> 0
                         and (t.tgqual is null
                              or substring(pg_get_triggerdef(t.oid) from ' WHEN (.*) EXECUTE ')
                                 = format('(row_security_active((%L::regclass)::oid))', c.oid::regclass)
                              -- profile citus: the table's name as text (valid on the workers)
                              or to_regclass(substring(pg_get_triggerdef(t.oid)
                                   from ' WHEN \(row_security_active\(''([^'']+)''::text\)\) EXECUTE ')) = c.oid))
              and exists (select 1 from pg_trigger t
                           where t.tgrelid = c.oid and not t.tgisinternal and t.tgattr = ''::int2vector
                             and t.tgfoid = 'private.reject_other_tenant_insert()'::regprocedure
                             and (t.tgtype & 1) <> 0 and (t.tgtype & 2) <> 0 and (t.tgtype & 16) <> 0
                             and (t.tgqual is null
                                  or substring(pg_get_triggerdef(t.oid) from ' WHEN (.*) EXECUTE ')
                                     = '((new.company_id IS DISTINCT FROM old.company_id))'))) $$,
  'every tenant table (live, archive, private) runs the tenant guard before insert (for every caller subject to RLS) and before every update that changes company_id');

-- Catalog-driven: moving any row of company A to company B is refused, as a member, as
-- service_role and as the migration owner (a new tenant table is covered automatically;
-- every tenant table has fixture rows of A). A role that may update company_id gets the
-- guard's error; one without the privilege, permission denied (also 42501). On a Citus
-- cluster Citus refuses it first, for everyone: the distribution column never changes.
select is(case when tests.citus_distributed(c.oid) then v.outcome
               when w.role is null or has_column_privilege(w.role, c.oid, 'company_id', 'UPDATE') then v.outcome
               else left(v.outcome, 5) end,
          case when tests.citus_distributed(c.oid) then '0A000: modifying the partition value of rows is not allowed'
               when w.role is null or has_column_privilege(w.role, c.oid, 'company_id', 'UPDATE')
               then format('42501: the tenant key of %s cannot change', c.oid::regclass) else '42501' end,
          format('%s cannot move a row of %s to another company', w.who, c.oid::regclass))
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 cross join (values (1, 'owner', 'authenticated'), (2, 'service_role', 'service_role'), (3, 'superuser', null)) w(o, who, role)
 cross join lateral (
   select case w.who when 'superuser' then tests.attempt(s.sql) else tests.attempt_as(w.who, s.sql) end as outcome
     from (select format('update %s set company_id = %L where company_id = %L',
                         c.oid::regclass, tests.company_id('B'), tests.company_id('A')) as sql) s) v
 where n.nspname in ('public', 'private', 'archive') and c.relkind in ('r', 'p')
   and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id' and not a.attisdropped)
 order by c.oid::regclass::text, w.o;

-- Security definer functions ---------------------------------------------------------
select is(
    array(select p.oid::regprocedure::text from pg_proc p
           where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
             and not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false) order by 1),
    '{}'::text[], 'every security definer function pins search_path to pg_catalog, pg_temp (pg_temp last: a temp object never shadows a relation or type)');

select is(
    array(select p.oid::regprocedure::text from pg_proc p
           where p.prosecdef and p.pronamespace = 'public'::regnamespace
             and has_function_privilege('anon', p.oid, 'execute') order by 1),
    '{}'::text[], 'anon cannot execute any security definer function');

-- rule: exposed-definers-are-rpcs (docs/rules.md)
-- The Data API serves public: a definer function there is an endpoint running as its owner.
select is(
    array(select distinct p.oid::regprocedure::text
            from pg_depend d join pg_proc p on p.oid = d.refobjid
           where d.classid = 'pg_policy'::regclass and d.refclassid = 'pg_proc'::regclass
             and p.prosecdef and p.pronamespace = 'public'::regnamespace order by 1),
    '{}'::text[], 'no policy calls a security definer function of the exposed schema public: the policy helpers live in private');
select is(
    array(select p.oid::regprocedure::text from pg_proc p
           where p.prosecdef and p.pronamespace = 'public'::regnamespace
             and has_function_privilege('authenticated', p.oid, 'execute')
             and coalesce(obj_description(p.oid, 'pg_proc'), '') !~ 'doctor: allow definer\.exposed \S'
           order by 1),
    '{}'::text[], 'every security definer function authenticated may execute in public is an RPC whose comment says so (doctor: allow definer.exposed)');

-- rule: anon-surface (docs/rules.md)
-- anon ----------------------------------------------------------------------------------
-- Justified exception: public.role_rank(user_role) is an immutable pure mapping
-- (owner 4 .. operador 1), inlined into policies; it reads no data.
select is_empty($$
  select p.oid::regprocedure::text
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('public', 'private')
     and has_function_privilege('anon', p.oid, 'EXECUTE') and has_schema_privilege('anon', n.oid, 'USAGE')
     and p.oid <> 'public.role_rank(public.user_role)'::regprocedure
     and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e') $$,
  'anon can execute no function in public or private (except the pure public.role_rank)');
select is((select provolatile::text || prosecdef::text from pg_proc where oid = 'public.role_rank(public.user_role)'::regprocedure),
  'ifalse', 'the one function anon may call is immutable and not security definer');

-- Every function and procedure, called by anon with null arguments, is refused
-- before it runs (permission denied for the function or for its schema).
create function pg_temp.anon_call(p_fn regprocedure) returns text
language plpgsql as $$
declare
  v_args text;
  v_kind "char";
begin
  select string_agg('null::' || t::regtype::text, ', ' order by o), min(p.prokind)
    into v_args, v_kind
    from pg_proc p left join lateral unnest(p.proargtypes::oid[]) with ordinality as a(t, o) on true
   where p.oid = p_fn;
  perform tests.act_as_anon();
  begin
    if v_kind = 'p' then
      execute format('call %s.%I(%s)', (select pronamespace::regnamespace from pg_proc where oid = p_fn),
                     (select proname from pg_proc where oid = p_fn), coalesce(v_args, ''));
    else
      execute format('select %s.%I(%s)', (select pronamespace::regnamespace from pg_proc where oid = p_fn),
                     (select proname from pg_proc where oid = p_fn), coalesce(v_args, ''));
    end if;
    perform tests.act_as_superuser();
    return 'ran';
  exception when others then
    perform tests.act_as_superuser();
    return sqlstate;
  end;
end $$;

select is(pg_temp.anon_call(p.oid),
          case when p.oid = 'public.role_rank(public.user_role)'::regprocedure then 'ran' else '42501' end,
          format('anon cannot call %s', p.oid::regprocedure))
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname in ('public', 'private') and p.prokind in ('f', 'p')
   and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
 order by p.oid::regprocedure::text;

select is_empty($$
  select c.oid::regclass::text || ' ' || pr.p
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) pr(p)
   where n.nspname in ('public', 'private', 'auth') and c.relkind in ('r', 'p', 'v', 'm', 'f')
     and has_table_privilege('anon', c.oid, pr.p)
     and not (c.oid = 'public.subscription_plans'::regclass and pr.p = 'SELECT') $$,
  'anon holds no table privilege except reading the plan catalogue');

-- No client role can create objects that could shadow ours -------------------------------
select is_empty($$
  select r || ' ' || n.nspname
    from pg_namespace n cross join unnest(array['anon', 'authenticated', 'service_role']) r
   where n.nspname not like 'pg\_%' and n.nspname <> 'information_schema'
     and has_schema_privilege(r, n.oid, 'CREATE') $$,
  'anon, authenticated and service_role cannot create objects in any schema');
select is_empty($$
  select p.oid::regprocedure::text
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('public', 'private', 'auth') and p.prosecdef
     and not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false) $$,
  'every security definer function pins search_path to pg_catalog then pg_temp, never the empty path (which searches pg_temp first)');

-- Secrets: no path to credentials or token hashes through references, views or functions
select is_empty($$
  select r || ' ' || c.oid::regclass::text
    from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join unnest(array['anon', 'authenticated']) r
   where n.nspname in ('public', 'private', 'auth') and c.relkind in ('r', 'p', 'v', 'm')
     and (has_table_privilege(r, c.oid, 'REFERENCES')
          or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                      and has_column_privilege(r, c.oid, a.attnum, 'REFERENCES'))) $$,
  'no client role may reference our tables from a foreign key of its own (no existence probing through temp-table FKs)');

-- rule: request-role-locks-bounded (docs/rules.md)
-- Locks: LOCK TABLE checks table-level privileges only; table-level UPDATE, DELETE or TRUNCATE
-- (MAINTAIN on 17+) would let one member take ACCESS EXCLUSIVE on a table every company shares.
select is_empty($$
  select format('%s %s', r, c.oid::regclass)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    cross join (values ('anon'), ('authenticated')) as x (r)
   where n.nspname in ('public', 'private', 'archive', 'auth') and c.relkind in ('r', 'p', 'v', 'm')
     and (has_table_privilege(r, c.oid, 'UPDATE') or has_table_privilege(r, c.oid, 'DELETE')
          or has_table_privilege(r, c.oid, 'TRUNCATE')
          or (current_setting('server_version_num')::int >= 170000 and has_table_privilege(r, c.oid, 'MAINTAIN'))) $$,
  'no request role holds a table-level privilege that lets it lock a table beyond ROW EXCLUSIVE (column-level UPDATE, deletes through delete_rows)');
select is(tests.attempt_as('operador', 'lock table public.users in access exclusive mode'),
  '42501: permission denied for table users',
  'an operador cannot lock the shared users table in ACCESS EXCLUSIVE mode');
select is(tests.attempt_as('owner', 'lock table public.chatbots in share mode'),
  '42501: permission denied for table chatbots',
  'an owner cannot take a SHARE lock (stronger than ROW EXCLUSIVE) on the shared chatbots table');
select is(tests.attempt_as('anon', 'lock table public.subscription_plans in exclusive mode'),
  '42501: permission denied for table subscription_plans',
  'anon cannot lock a shared table beyond ACCESS SHARE');
select is(tests.attempt_as('owner', $$ select public.delete_rows('public.companies', jsonb_build_array(jsonb_build_object('id', tests.company_id('A')))) $$),
  '42501: rows of public.companies cannot be deleted through delete_rows',
  'delete_rows deletes only from the tables members delete from');
select is(tests.attempt_as('administrador', $$ do $d$ begin
    if public.delete_rows('public.documents', jsonb_build_array(jsonb_build_object('id', tests.document_id('A', 'shipping faq')),
                                                             jsonb_build_object('id', tests.document_id('B', 'account fees')))) <> 1 then
      raise exception 'delete_rows did not delete exactly one document';
    end if;
    if exists (select 1 from public.documents where id = tests.document_id('A', 'shipping faq')) then
      raise exception 'delete_rows did not delete exactly the own document';
    end if; end $d$ $$),
  'ok',
  'delete_rows deletes what the delete policies let the caller delete and nothing of another company');
-- policies/0590 can set role settings and revoke catalog functions only when a superuser
-- applies it (otherwise it says so in a NOTICE: Supabase's postgres is not one): these
-- assertions hold where the schema's owner is a superuser, and are skipped elsewhere.
select case when tests.applied_by_superuser() then
  is(array(select r.rolname || ' ' || c.item
                  from pg_db_role_setting s
                  join pg_roles r on r.oid = s.setrole
                  cross join lateral unnest(s.setconfig) as c (item)
                 where r.rolname in ('anon', 'authenticated')
                   and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
                   and c.item ~ '^(statement_timeout|lock_timeout|idle_in_transaction_session_timeout)='
                 order by 1),
  array['anon idle_in_transaction_session_timeout=15s', 'anon lock_timeout=2s', 'anon statement_timeout=3s',
        'authenticated idle_in_transaction_session_timeout=30s', 'authenticated lock_timeout=4s',
        'authenticated statement_timeout=8s'],
  'anon and authenticated run with a statement, lock and idle-in-transaction timeout in this database')
  else skip('the migrations were not applied by a superuser: 0590 could not set role settings (NOTICE)', 1) end;

-- rule: truncate-refused (docs/rules.md)
-- TRUNCATE fires no delete trigger: every table whose delete triggers keep state elsewhere
-- (counters, chatbot visibility, the audit trail) or guard a rule refuses it, for every role.
select is_empty($$
  select c.oid::regclass::text
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('public', 'private', 'archive') and c.relkind in ('r', 'p')
     and exists (select 1 from pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal and (t.tgtype & 8) = 8
                    and t.tgfoid <> 'private.legal_hold_guard'::regproc)
     and not exists (select 1 from pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal and (t.tgtype & 34) = 34
                        and t.tgfoid <> 'private.legal_hold_guard'::regproc) $$,
  'every table with delete triggers refuses TRUNCATE, which would bypass them');
select matches(tests.attempt_as('service_role', 'truncate public.chatbot_operators'),
  '^42501: public\.chatbot_operators cannot be truncated: its delete triggers keep',
  'service_role cannot truncate chatbot_operators (the operadores'' chatbot visibility would go stale)');
select matches(tests.attempt_as('service_role', 'truncate public.users cascade'),
  '^42501: public\.users cannot be truncated',
  'service_role cannot truncate the members (counts, the owner rule and visibility would go stale)');
select matches(tests.attempt('truncate public.legal_holds'),
  '^42501: public\.legal_holds cannot be truncated',
  'not even the table owner can truncate the legal holds (a hold is released, never deleted)');

-- rule: request-role-side-channels (docs/rules.md)
-- Side channels into other companies: a suspended/canceled probe, shared large objects,
-- cluster-wide activity counters.
select case when (select p.prosecdef from pg_proc p where p.oid = 'private.require_company_writable(uuid)'::regprocedure) then is(tests.attempt_as('owner', $$ select private.require_company_writable(tests.company_id('B')) $$),
  '42501: permission denied for function require_company_writable',
  'a member cannot ask whether another company is suspended or canceled (require_company_writable(uuid))')
  -- profile citus: it runs as its caller, reading companies under the caller's RLS
  else is(left(tests.same_either_way('owner', $$ select private.require_company_writable($1)::text $$, array[tests.company_id('B')]), 5),
  'same:', 'a member cannot ask whether another company is suspended or canceled (require_company_writable(uuid) answers for it as for a company that does not exist)') end;
select case when tests.applied_by_superuser() then is(tests.attempt_as('operador', $$ select lo_from_bytea(0, 'planted'::bytea) $$),
  '42501: permission denied for function lo_from_bytea',
  'a member cannot create a large object (owned by the shared role, readable by other companies)')
  else skip('the migrations were not applied by a superuser: 0590 could not revoke catalog functions (NOTICE)', 1) end;
select case when tests.applied_by_superuser() then is(tests.attempt_as('anon', $$ select lo_create(0) $$),
  '42501: permission denied for function lo_create',
  'anon cannot create a large object')
  else skip('the migrations were not applied by a superuser: 0590 could not revoke catalog functions (NOTICE)', 1) end;
select case when tests.applied_by_superuser() then is(tests.attempt_as('owner', $$ select n_tup_ins from pg_stat_user_tables where relname = 'messages' $$),
  '42501: permission denied for view pg_stat_user_tables',
  'a member cannot read the cluster-wide insert counters of a shared table')
  else skip('the migrations were not applied by a superuser: 0590 could not revoke catalog functions (NOTICE)', 1) end;
select case when tests.applied_by_superuser() then is(tests.attempt_as('owner', $$ select pg_stat_get_tuples_inserted('public.messages'::regclass) $$),
  '42501: permission denied for function pg_stat_get_tuples_inserted',
  'a member cannot read the activity counters through the pg_stat_get_* functions either')
  else skip('the migrations were not applied by a superuser: 0590 could not revoke catalog functions (NOTICE)', 1) end;

-- Views and functions (catalog) ------------------------------------------------------------
select is_empty($$
  select distinct v.oid::regclass::text
    from pg_rewrite w join pg_class v on v.oid = w.ev_class
    join pg_depend d on d.objid = w.oid and d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
   where v.relkind in ('v', 'm') and v.oid <> d.refobjid
     and (has_table_privilege('anon', v.oid, 'SELECT') or has_table_privilege('authenticated', v.oid, 'SELECT'))
     and (d.refobjid = 'private.integration_credentials'::regclass
          or (d.refobjid = 'public.user_invitations'::regclass
              and d.refobjsubid = (select attnum from pg_attribute where attrelid = 'public.user_invitations'::regclass and attname = 'token_hash'))) $$,
  'no view readable by anon or authenticated exposes credentials or token hashes');
select is_empty($$
  select p.oid::regprocedure::text
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('public', 'private', 'auth')
     and (has_function_privilege('anon', p.oid, 'EXECUTE') or has_function_privilege('authenticated', p.oid, 'EXECUTE'))
     and (p.prosrc ~* 'integration_credentials|token_hash'
          or 'bytea'::regtype = any (coalesce(p.proallargtypes, array[]::oid[]) || p.prorettype))
     and p.oid not in ('public.set_integration_credentials(uuid, bytea, text)'::regprocedure,
                       'public.clear_integration_credentials(uuid)'::regprocedure,
                       'public.create_invitation(text, public.user_role)'::regprocedure,
                       'public.accept_invitation(text)'::regprocedure)
     -- profile citus: their definer bodies, behind the invoker RPCs (functions/_rpc.sql, delegated_rpc)
     and not (n.nspname = 'private' and p.prosecdef and p.proargnames[1] = 'p_company_id'
              and p.proname in ('set_integration_credentials', 'clear_integration_credentials', 'create_invitation')) $$,
  'no function callable by clients reads credentials or token hashes, or returns bytea, except the write-only credential RPCs and the invitation RPCs');
select is(array(select format_type(p.prorettype, null) || coalesce(' ' || array_to_string(p.proargmodes::text[], ''), '')
                  from pg_proc p
                 where p.oid in ('public.set_integration_credentials(uuid, bytea, text)'::regprocedure,
                                 'public.clear_integration_credentials(uuid)'::regprocedure,
                                 'public.create_invitation(text, public.user_role)'::regprocedure,
                                 'public.accept_invitation(text)'::regprocedure)
                 order by p.oid::regprocedure::text),
  array['uuid', 'boolean', 'record iitt', 'timestamp with time zone'],
  'those RPCs return a uuid, a boolean, (invitation id, fresh token) or a timestamp - never a stored secret');

-- rule: probing-reveals-nothing (docs/rules.md)
-- Every RPC, called with company B's ids (catalog-driven: a new function is covered) ---
-- Arguments by type; uuid arguments by name: add a kind here when a new parameter
-- name appears (the test fails until then).
create temp table rpc_calls as
with fns as (
  select p.oid, p.oid::regprocedure::text as sig, p.proname, p.prorettype, p.pronargs,
         coalesce(p.proallargtypes, p.proargtypes::oid[]) as types,
         coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs])) as modes,
         coalesce(p.proargnames, array_fill(''::text, array[coalesce(array_length(p.proallargtypes, 1), p.pronargs)])) as names
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and p.prokind = 'f' and p.prorettype <> 'trigger'::regtype
     and has_function_privilege('authenticated', p.oid, 'EXECUTE')
     and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
), args as (
  select f.oid, a.ord, a.name, a.type::regtype as type,
         case
           when a.type = 'uuid'::regtype then
             case when a.name ~ 'company' then '$company'
                  when a.name ~ 'invitation' then '$invitation'
                  when a.name ~ 'integration' then '$integration'
                  when a.name ~ 'chatbot' then '$chatbot'
                  when a.name ~ 'conversation' then '$conversation'
                  when a.name ~ 'message' then '$message'
                  when a.name ~ 'document' then '$document'
                  when a.name ~ '(user|owner|member)' then '$user'
             end
           when a.type = 'text'::regtype then
             case when a.name ~ 'token' then quote_literal('fixture-token-company-b')
                  when a.name ~ 'email' then quote_literal('invitee.b@example.com')
                  when a.name ~ 'plan' then quote_literal('free')
                  when a.name ~ 'template' then quote_literal('customer_support')
                  when a.name ~ 'table' then quote_literal('public.chatbots')
                  else quote_literal('hardening probe') end
           when a.type = 'jsonb'::regtype and a.name ~ 'keys' then 'jsonb_build_array(jsonb_build_object(''id'', $chatbot))'
           when a.type = 'public.user_role'::regtype then quote_literal('operador') || '::public.user_role'
           when a.type = 'bytea'::regtype then 'tests.fake_envelope(''hardening'')'
           when a.type = 'extensions.vector'::regtype then 'tests.axis_embedding(1)'
           when a.type in ('integer'::regtype, 'smallint'::regtype, 'bigint'::regtype) then '5'
           when a.type in ('double precision'::regtype, 'real'::regtype, 'numeric'::regtype) then '0'
           when a.type = 'boolean'::regtype then 'true'
           when a.type = 'date'::regtype then 'current_date'
           when a.type = 'timestamp with time zone'::regtype then 'now()'
         end as expr
    from fns f
    cross join lateral unnest(f.types, f.modes, f.names) with ordinality as a(type, mode, name, ord)
   where a.mode in ('i', 'b', 'v')
)
select f.sig,
       bool_and(a.expr is not null) or count(a.ord) = 0 as covered,
       string_agg(a.name || ' ' || a.type::text, ', ') filter (where a.expr is null) as uncovered,
       format('select coalesce(jsonb_agg(to_jsonb(r))::text, ''[]'') from public.%I(%s) r', f.proname,
              coalesce(string_agg(a.expr, ', ' order by a.ord), '')) as call
  from fns f left join args a on a.oid = f.oid
 group by f.oid, f.sig, f.proname;

-- The B ids each placeholder stands for (a guessed id for the control call).
create function pg_temp.rpc_outcomes(p_identity text, p_call text) returns text
language plpgsql as $$
declare
  v_real text := p_call;
  v_guess text := p_call;
  k record;
  a text;
  b text;
begin
  for k in select * from (values
      ('$company', tests.company_id('B')), ('$invitation', tests.invitation_id('B', 'pending')),
      ('$integration', tests.integration_id('B', 'with credentials')), ('$chatbot', tests.chatbot_id('B', 'assigned')),
      ('$conversation', tests.conversation_id('B', 'assigned-human')), ('$message', tests.message_id('B', 'assigned-human/bot')),
      ('$document', tests.document_id('B', 'account fees')), ('$user', tests.user_id('B', 'administrador'))) v(ph, id) loop
    v_real := replace(v_real, k.ph, quote_literal(k.id) || '::uuid');
    v_guess := replace(v_guess, k.ph, quote_literal(gen_random_uuid()) || '::uuid');
  end loop;
  a := tests.outcome_as(p_identity, v_real);
  b := tests.outcome_as(p_identity, v_guess);
  if a like 'CHANGED%' or a ~ 'bbbbbbbb|Company B|Beatriz|Bruno|Blanca|Benito|account fee' then
    return 'LEAK: ' || a;
  end if;
  return case when a = b then 'same' else format('DIFFERENT: with B''s ids [%s], with guessed ids [%s]', a, b) end;
end $$;

select is(case when c.covered then pg_temp.rpc_outcomes('owner', c.call) else 'no B id for: ' || c.uncovered end, 'same',
          format('%s called by an owner with another company''s ids changes and returns nothing of it, and answers as for unknown ids', c.sig))
  from rpc_calls c order by c.sig;
select is(case when c.covered then pg_temp.rpc_outcomes('no_company', c.call) else 'no B id for: ' || c.uncovered end, 'same',
          format('%s called by an identity without a company with another company''s ids changes and returns nothing of it', c.sig))
  from rpc_calls c order by c.sig;

-- Shadowing attack: temp tables named like every table of ours (catalog-driven),
-- poisoned so that a name resolved through the caller's path would make the
-- administrador of A the owner of company B; plus a schema that shadows
-- pg_catalog functions (sha256, lower, now) placed before pg_catalog.
do $$
declare
  r record;
begin
  for r in select distinct on (c.relname) c.relname, c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('public', 'private', 'auth') and c.relkind in ('r', 'p')
            order by c.relname, n.nspname <> 'public'
  loop
    execute format('create temp table %I (like %s including defaults)', r.relname, r.oid::regclass);
  end loop;
end $$;
insert into pg_temp.users (company_id, id, auth_user_id, email, role)
values (tests.company_id('B'), tests.user_id('B', 'owner'), tests.auth_id('A', 'administrador'), 'admin.a@example.com', 'owner');
insert into pg_temp.chatbot_operators (company_id, chatbot_id, user_id)
values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('A', 'operador'));
insert into pg_temp.user_invitations (company_id, id, email, role, token_hash, status, expires_at)
values (tests.company_id('B'), gen_random_uuid(), 'nocompany@example.com', 'administrador',
        sha256(convert_to('shadow-token', 'UTF8')), 'pending', now() + interval '1 day');
-- Each temp table by name (Citus cannot expand `all tables in schema pg_temp`).
do $$
declare
  r record;
begin
  for r in select c.oid::regclass as t from pg_class c where c.relnamespace = pg_my_temp_schema() and c.relkind = 'r' loop
    execute format('grant all on %s to public', r.t);
  end loop;
end $$;

create schema shadow;
create function shadow.sha256(bytea) returns bytea language sql immutable
  as $$ select pg_catalog.sha256(pg_catalog.convert_to('fixture-token-company-b', 'UTF8')) $$;
create function shadow.lower(text) returns text language sql immutable as $$ select 'invitee.b@example.com'::text $$;
create function shadow.now() returns timestamptz language sql stable as $$ select '2000-01-01'::timestamptz $$;
grant usage on schema shadow to public;

select tests.act_as('A', 'administrador');
select set_config('search_path', 'pg_temp, shadow, pg_catalog, public, tap, extensions', true);
select is(array[private.get_user_company_id()::text, private.get_user_role()::text, private.get_current_user_id()::text],
  array[tests.company_id('A')::text, 'administrador', tests.user_id('A', 'administrador')::text],
  'the tenant-context helpers ignore temp tables and functions that shadow their objects');
select tests.act_as('A', 'operador');
select set_config('search_path', 'pg_temp, shadow, pg_catalog, public, tap, extensions', true);
select is(private.get_assigned_chatbot_ids(), array[tests.chatbot_id('A', 'assigned')],
  'get_assigned_chatbot_ids ignores a shadowing chatbot_operators temp table');
select tests.act_as('A', 'administrador');
select set_config('search_path', 'pg_temp, shadow, pg_catalog, public, tap, extensions', true);
select throws_ok($$ select * from public.create_invitation('peer@example.com', 'administrador') $$, '42501', null,
  'a security definer function ignores a caller''s search_path that shadows public objects (role still from public.users)');
select tests.act_as_no_company();
select set_config('search_path', 'shadow, pg_catalog, pg_temp, public, tap, extensions', true);
select throws_ok($$ select public.accept_invitation('shadow-token') $$, '22023', 'invitation not found',
  'accept_invitation hashes with pg_catalog.sha256 and reads public.user_invitations whatever the caller''s search_path');

select * from finish();
rollback;
