-- Hardening (secrets): integration credentials and invitation token hashes are
-- not readable through any path - privileges, views, functions, audit rows,
-- RETURNING, planner statistics - by anon or authenticated.
begin;
select plan(13);

-- Privileges (catalog) ---------------------------------------------------------------
select is_empty($$
  select r || ' ' || pr.p
    from unnest(array['anon', 'authenticated']) r
   cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) pr(p)
   where has_table_privilege(r, 'private.integration_credentials', pr.p)
  union all
  select r || ' ' || a.attname || ' ' || pr.p
    from unnest(array['anon', 'authenticated']) r
   cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) pr(p)
    join pg_attribute a on a.attrelid = 'private.integration_credentials'::regclass and a.attnum > 0 and not a.attisdropped
   where has_column_privilege(r, 'private.integration_credentials', a.attnum, pr.p) $$,
  'anon and authenticated hold no table or column privilege on private.integration_credentials');
select is_empty($$
  select r || ' ' || pr.p from unnest(array['anon', 'authenticated']) r
   cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) pr(p)
   where has_column_privilege(r, 'public.user_invitations', 'token_hash', pr.p) $$,
  'anon and authenticated cannot read, write or reference user_invitations.token_hash');
select is_empty($$
  select r || ' ' || c.oid::regclass::text
    from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join unnest(array['anon', 'authenticated']) r
   where n.nspname in ('public', 'private', 'auth') and c.relkind in ('r', 'p', 'v', 'm')
     and (has_table_privilege(r, c.oid, 'REFERENCES')
          or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                      and has_column_privilege(r, c.oid, a.attnum, 'REFERENCES'))) $$,
  'no client role may reference our tables from a foreign key of its own (no existence probing through temp-table FKs)');

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
                       'public.accept_invitation(text)'::regprocedure) $$,
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

-- Behaviour -------------------------------------------------------------------------------
select tests.act_as('A', 'owner');
select set_integration_credentials(tests.integration_id('A', 'without credentials'), tests.fake_envelope('hardening-secret'), 'kms:neurant/integrations/v1');
select throws_ok($$ select ciphertext from private.integration_credentials $$, '42501', null,
  'the owner cannot read the credentials table');
select throws_ok($$ update public.integrations set name = name
                     where id = tests.integration_id('A', 'without credentials')
                 returning (select c.ciphertext from private.integration_credentials c limit 1) $$,
  '42501', null, 'credentials are not readable through RETURNING of an integrations update');
select throws_ok($$ insert into private.integration_credentials (company_id, integration_id, ciphertext, key_id)
                    values (tests.company_id('A'), tests.integration_id('A', 'without credentials'), tests.fake_envelope('x'), 'k')
                    returning ciphertext $$,
  '42501', null, 'members cannot insert (and read back through RETURNING) credentials directly');
select is((select array_agg(k order by k) from public.integrations i, jsonb_object_keys(to_jsonb(i)) k
            where i.id = tests.integration_id('A', 'without credentials')) @> array['has_credentials']
          and not exists (select 1 from public.integrations i, jsonb_each_text(to_jsonb(i)) e
                           where e.value ~ encode(tests.fake_envelope('hardening-secret'), 'hex')),
  true, 'integrations rows show only that credentials exist, never the envelope');
select ok(not exists (select 1 from public.audit_logs a
                       where coalesce(a.new_data::text, '') || coalesce(a.old_data::text, '')
                             ~ encode(tests.fake_envelope('hardening-secret'), 'hex'))
          and exists (select 1 from public.audit_logs a where a.table_name = 'integration_credentials'
                        and a.new_data ->> 'ciphertext' = '[REDACTED]'),
  'credentials are not readable through audit_logs (the ciphertext is redacted)');
select tests.act_as_superuser();
select ok(not exists (select 1 from public.audit_logs a
                        join private.integration_credentials c on true
                       where coalesce(a.new_data::text, '') || coalesce(a.old_data::text, '') ~ encode(c.ciphertext, 'hex'))
          and not exists (select 1 from public.audit_logs a
                            join public.user_invitations i on true
                           where coalesce(a.new_data::text, '') || coalesce(a.old_data::text, '') ~ encode(i.token_hash, 'hex')),
  'no audit row of any company carries a stored ciphertext or token hash');
analyze private.integration_credentials, public.user_invitations;
select tests.act_as('A', 'owner');
select is((select count(*)::int from pg_stats
            where (schemaname, tablename) in (('private', 'integration_credentials'), ('public', 'user_invitations'))),
  0, 'credentials and token hashes are not readable through planner statistics');

select * from finish();
rollback;
