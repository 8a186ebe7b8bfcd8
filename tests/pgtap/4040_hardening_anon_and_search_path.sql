-- Hardening (anon and search_path): anon may call nothing but a pure helper
-- (catalog-driven: a new function is covered), no client role can create
-- objects anywhere, and security definer functions are immune to a caller's
-- search_path and to temporary tables or functions shadowing their objects.
begin;
select plan(9 + (select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                   where n.nspname in ('public', 'private') and p.prokind in ('f', 'p')
                     and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')));

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
     and not coalesce(p.proconfig @> array['search_path=""'], false) $$,
  'every security definer function pins search_path to the empty path');

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
grant all on all tables in schema pg_temp to public;

create schema shadow;
create function shadow.sha256(bytea) returns bytea language sql immutable
  as $$ select pg_catalog.sha256(pg_catalog.convert_to('fixture-token-company-b', 'UTF8')) $$;
create function shadow.lower(text) returns text language sql immutable as $$ select 'invitee.b@example.com'::text $$;
create function shadow.now() returns timestamptz language sql stable as $$ select '2000-01-01'::timestamptz $$;
grant usage on schema shadow to public;

select tests.act_as('A', 'administrador');
select set_config('search_path', 'pg_temp, shadow, pg_catalog, public, tap, extensions', true);
select is(array[public.get_user_company_id()::text, public.get_user_role()::text, public.get_current_user_id()::text],
  array[tests.company_id('A')::text, 'administrador', tests.user_id('A', 'administrador')::text],
  'the tenant-context helpers ignore temp tables and functions that shadow their objects');
select tests.act_as('A', 'operador');
select set_config('search_path', 'pg_temp, shadow, pg_catalog, public, tap, extensions', true);
select is(public.get_assigned_chatbot_ids(), array[tests.chatbot_id('A', 'assigned')],
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
