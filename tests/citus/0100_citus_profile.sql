-- Profile citus on plain PostgreSQL: the shapes Citus needs, proven on the catalog and
-- on behaviour (tests/test_citus_profile.py runs this file after the whole pgTAP suite
-- and the isolation matrix against a database migrated with --profile citus).
begin;
select plan(18);

-- The tables' own policies: the join with pg_class leaves out the shards Citus hides there
-- (on the coordinator the reference tables' placements, whose policies seeds/3995 wraps).
select is(array(
  select format('%s on %s', pol.polname, pol.polrelid::regclass) collate "C"
    from pg_policy pol
    join pg_class c on c.oid = pol.polrelid
   where coalesce(pg_get_expr(pol.polqual, pol.polrelid), '') || ' '
         || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '') ~* '\mselect\M'
   order by 1),
  '{}'::text[],
  'no policy holds a subquery (Citus refuses SubLinks in the policies of distributed tables)');

select is(array(
  select p.oid::regprocedure::text collate "C"
    from pg_proc p
   where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
     and p.prosrc ~* '\mtg_table_name\M'
   order by 1),
  '{}'::text[],
  'no function reads TG_TABLE_NAME (inside a shard trigger it is the shard''s name)');

select is(array(
  select p.proname::text collate "C"
    from pg_proc p
   where p.oid in ('private.get_current_user_id()'::regprocedure, 'private.get_user_company_id()'::regprocedure,
                   'private.get_user_role()'::regprocedure, 'private.get_assigned_chatbot_ids()'::regprocedure,
                   'private.get_visible_chatbot_ids()'::regprocedure, 'private.get_user_plan_code()'::regprocedure,
                   'private.require_company_writable()'::regprocedure,
                   'private.require_company_writable(uuid)'::regprocedure)
     and not coalesce('citus.allow_nested_distributed_execution=on' = any (p.proconfig), false)
   order by 1),
  '{}'::text[],
  'every function a policy calls carries citus.allow_nested_distributed_execution = on');

select is(array(
  select p.proname::text collate "C"
    from pg_proc p
   where p.oid in ('public.create_company_with_owner(text, text, text, text)'::regprocedure,
                   'public.transfer_ownership(uuid)'::regprocedure,
                   'private.create_invitation(uuid, text, public.user_role)'::regprocedure,
                   'public.accept_invitation(text)'::regprocedure, 'private.revoke_invitation(uuid, uuid)'::regprocedure,
                   'public.set_member_role(uuid, public.user_role)'::regprocedure,
                   'public.set_member_active(uuid, boolean)'::regprocedure, 'public.remove_member(uuid)'::regprocedure)
     and not coalesce('citus.multi_shard_modify_mode=sequential' = any (p.proconfig), false)
   order by 1),
  '{}'::text[],
  'the RPCs that write several tables (the membership RPCs: the copy, then public.users) run in sequential mode (one connection per node, as foreign keys to reference tables need)');

-- The delegated RPCs (functions/_rpc.sql, delegated_rpc; docs/scale-out.md, "Definer RPCs on
-- Citus"): the public RPC is a security invoker, its body a security definer in private whose
-- first argument is the company Citus routes the call by (seeds/3990 distributes it).
select is(array(
  select i.proname::text || ': ' || case when i.prosecdef then 'public is a definer' when d.oid is null then 'no body'
                                         when not d.prosecdef then 'body is an invoker'
                                         when not coalesce('search_path=pg_catalog, pg_temp' = any (d.proconfig), false) then 'body search_path'
                                         else 'ok' end collate "C"
    from pg_proc i
    left join pg_proc d on d.proname = i.proname and d.pronamespace = 'private'::regnamespace
                       and d.proargnames[1] = 'p_company_id' and d.proargtypes[0] = 'uuid'::regtype
   where i.pronamespace = 'public'::regnamespace
     and i.proname in ('create_invitation', 'revoke_invitation', 'set_integration_credentials', 'clear_integration_credentials')
   order by 1),
  array['clear_integration_credentials: ok', 'create_invitation: ok', 'revoke_invitation: ok', 'set_integration_credentials: ok'],
  'the delegated RPCs are invokers in public whose security definer bodies in private take the company first');

select is(array(
  select p.proname::text collate "C"
    from pg_proc p
   where p.oid in ('private.get_current_user_id()'::regprocedure, 'private.get_user_company_id()'::regprocedure,
                   'private.get_user_role()'::regprocedure)
     and p.prosrc ~ '\mpublic\.users\M'
   order by 1),
  '{}'::text[],
  'the membership helpers read the reference copy private.memberships, not the distributed public.users');

select is(array(
  select (i.indrelid::regclass::text || '.' || c.relname::text) collate "C"
    from pg_index i join pg_class c on c.oid = i.indexrelid
    join private.citus_layout l on l.relation = i.indrelid and l.placement = 'distributed'
   where i.indisunique
     and not exists (select 1 from pg_attribute a where a.attrelid = i.indrelid
                      and a.attname = l.distribution_column and a.attnum = any (i.indkey::int2[]))
   order by 1),
  '{}'::text[],
  'every unique key of a distributed table includes its distribution column');

select is(array(
  select c.oid::regclass::text collate "C"
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where c.relkind in ('r', 'p') and not c.relispartition
     and n.nspname in ('public', 'private', 'archive', 'auth')
     and not exists (select 1 from private.citus_layout l where l.relation = c.oid)
   order by 1),
  '{}'::text[],
  'every table has its placement in private.citus_layout');

select is(array(
  select l.relation::text collate "C"
    from private.citus_layout l
   where (l.placement = 'distributed')
         <> (exists (select 1 from pg_attribute a where a.attrelid = l.relation and a.attname = 'company_id')
             and l.relation <> 'private.memberships'::regclass
             or l.relation = 'public.companies'::regclass)
   order by 1),
  '{}'::text[],
  'the tenant tables (and companies) are distributed, the global tables and the membership copy are reference tables');

select is(array(
  select format('%s -> %s', k.conrelid::regclass, k.confrelid::regclass) collate "C"
    from pg_constraint k
    join private.citus_layout s on s.relation = k.conrelid
    join private.citus_layout d on d.relation = k.confrelid
   where k.contype = 'f' and k.conrelid <> k.confrelid and s.position < d.position
   order by 1),
  '{}'::text[],
  'a table is distributed after every table its foreign keys reference');

select is(array(
  select format('%s.%s', k.conrelid::regclass, k.conname) collate "C"
    from pg_constraint k
    join private.citus_layout s on s.relation = k.conrelid and s.placement = 'reference'
    join private.citus_layout d on d.relation = k.confrelid and d.placement = 'distributed'
   where k.contype = 'f'
   order by 1),
  '{}'::text[],
  'no foreign key goes from a reference table to a distributed table');

select is(array(
  select l.relation::text collate "C" from private.citus_layout l
   where l.placement = 'distributed'
     and l.colocate_with is distinct from (case when l.relation = 'public.companies'::regclass then null
                                                else 'public.companies'::regclass end)
   order by 1),
  '{}'::text[],
  'every distributed table is co-located with companies');

select is(array(
  select format('%s.%s', c.oid::regclass, a.attname) collate "C"
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
   where n.nspname in ('public', 'private', 'archive') and c.relkind = 'r' and a.attgenerated = ''
     and not has_table_privilege('authenticated', c.oid, 'INSERT')
     and not has_column_privilege('authenticated', c.oid, a.attnum, 'INSERT')
     and exists (select 1 from pg_attribute x where x.attrelid = c.oid and x.attnum > 0 and not x.attisdropped
                  and has_column_privilege('authenticated', c.oid, x.attnum, 'INSERT'))
   order by 1),
  '{}'::text[],
  'no column-listed insert grant leaves out a defaulted column (a Citus shard checks every column the coordinator fills in)');

select is(array(
  select c.relname::text collate "C" from pg_trigger t join pg_class c on c.oid = t.tgrelid
   where t.tgfoid = 'private.citus_client_defaults()'::regprocedure order by 1),
  array['chatbot_operators', 'chatbots', 'conversations', 'document_chunks', 'documents', 'integrations',
        'message_reactions', 'messages'] collate "C",
  'the tables members insert into with a column list reset the defaulted columns they could not name before');

select tests.act_as('A', 'owner');
insert into public.chatbots (company_id, id, name, system_prompt, created_at)
  values (tests.company_id('A'), '00000000-0000-0000-0000-000000000000', 'Backdated', 'You help.', '2000-01-01');
select tests.act_as_superuser();
-- (the insert's own transaction time: on a cluster each statement is a transaction of its own)
select is((select (c.id <> '00000000-0000-0000-0000-000000000000' and c.created_at > now() - interval '1 minute')
             from public.chatbots c where c.company_id = tests.company_id('A') and c.name = 'Backdated'),
  true, 'a member''s own id and created_at are replaced by the defaults, as the missing grant refuses them elsewhere');

select is(private.logical_table_name('public.users'::regclass), 'users'::name,
  'logical_table_name of a table is its name');

select ok(exists (select 1 from pg_db_role_setting s
                   where s.setdatabase = (select d.oid from pg_database d where d.datname = current_database())
                     and s.setrole = 0 and 'citus.enable_unsafe_triggers=on' = any (s.setconfig)),
  'the database sets citus.enable_unsafe_triggers = on for the migrations after the distribution');

select is(private.citus_distribute(), 0,
  'without the citus extension the distribution step places nothing');

select * from finish();
rollback;
