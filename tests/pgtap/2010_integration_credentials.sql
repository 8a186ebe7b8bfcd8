-- Integration credentials are write-only and encrypted: an envelope, never plaintext,
-- set through an RPC by owner/administrador of the integration's company, readable
-- only by service_role; not through privileges, RETURNING, integrations rows, audit
-- rows or planner statistics; never attached across companies.
begin;
select plan(20);

-- rule: credentials-write-only (docs/rules.md)
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
select is(tests.attempt_as('service_role', $$ insert into private.integration_credentials (company_id, integration_id, ciphertext, key_id)
  values (tests.company_id('A'), tests.integration_id('B', 'with credentials'), tests.fake_envelope('x'), 'k') $$),
  '23503: insert or update on table "integration_credentials" violates foreign key constraint "integration_credentials_integration_fkey"',
  'credentials cannot be attached to another company''s integration, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into private.integration_credentials (company_id, integration_id, ciphertext, key_id, updated_by)
  values (tests.company_id('A'), tests.integration_id('A', 'without credentials'), tests.fake_envelope('x'), 'k', tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "integration_credentials" violates foreign key constraint "integration_credentials_updated_by_fkey"',
  'credentials cannot name another company''s member as writer, even for service_role');
select tests.act_as('A', 'administrador');

select throws_ok($$ select * from private.integration_credentials $$,
    '42501', null, 'integration credentials are not readable by an administrador');
select lives_ok($$ select public.set_integration_credentials(tests.integration_id('A', 'without credentials'),
                                                            tests.fake_envelope('A-webhook-v2'), 'kms:neurant/integrations/v2') $$,
    'an administrador can set integration credentials (write-only RPC)');
select ok((select has_credentials and credentials_updated_at is not null from public.integrations
            where id = tests.integration_id('A', 'without credentials')),
    'integrations.has_credentials shows that credentials are stored, without revealing them');
select throws_ok($$ select public.set_integration_credentials(tests.integration_id('A', 'without credentials'),
                                                             convert_to('{"api_key": "plaintext"}', 'UTF8'), 'kms:x') $$,
    '22023', null, 'credentials must be an encrypted envelope, never plaintext');
select throws_ok($$ select public.set_integration_credentials(tests.integration_id('B', 'with credentials'),
                                                             tests.fake_envelope('evil'), 'kms:x') $$,
    '42501', null, 'an administrador cannot set credentials of another company''s integration');
select is((select count(*)::int from pg_catalog.pg_proc p
            where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
              and p.prorettype = 'bytea'::regtype
              and has_function_privilege('authenticated', p.oid, 'execute')), 0,
    'no function callable by authenticated returns credential bytes');

select tests.act_as('A', 'supervisor');
select throws_ok($$ select public.set_integration_credentials(tests.integration_id('A', 'with credentials'),
                                                             tests.fake_envelope('sup'), 'kms:x') $$,
    '42501', null, 'a supervisor cannot set integration credentials');
select tests.act_as_anon();
select throws_ok($$ select * from private.integration_credentials $$,
    '42501', null, 'integration credentials are not readable by anon');
select tests.act_as_service();
select is((select count(*)::int from private.integration_credentials), 3,
    'service_role (the bot engine) reads the encrypted credentials to decrypt them with its key');
select tests.act_as_superuser();
select results_eq(
    $$ select actor_user_id, actor_role, new_data ->> 'ciphertext', new_data ->> 'key_id'
         from public.audit_logs
        where table_name = 'integration_credentials' and row_pk ->> 'integration_id' = tests.integration_id('A', 'without credentials')::text $$,
    $$ values (tests.user_id('A', 'administrador'), 'authenticated', '[REDACTED]', 'kms:neurant/integrations/v2') $$,
    'setting credentials is audited with the acting member, in the same transaction, ciphertext redacted');

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
