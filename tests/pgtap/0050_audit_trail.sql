-- The audit trail (schema/0050_audit_trail.sql, policies/0500_tenancy_policies.sql):
-- security and configuration changes are written in the same transaction, redacted,
-- readable by owner/administrador of the company only, and append-only for every
-- role, service_role and the table owner included.
-- rule: audit-trail (docs/rules.md)
begin;
select plan(13);

select tests.act_as_superuser();
select tests.set_member(tests.user_id('A', 'supervisor'), 'administrador');
select results_eq(
    $$ select old_data ->> 'role', new_data ->> 'role', 'role' = any (changed_columns)
         from public.audit_logs
        where table_name = 'users' and action = 'update' and row_id = tests.user_id('A', 'supervisor') $$,
    $$ values ('supervisor', 'administrador', true) $$,
    'changing a user''s role writes an audit row with old and new role');
select is(private.audit_redact('{"passphrase": "correct horse", "encryption_key": "k1", "hook": "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/cCcCcCcCcCcCcCcCcCcCcCcC", "bot": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0", "name": "Support"}'::jsonb),
    '{"passphrase": "[REDACTED]", "encryption_key": "[REDACTED]", "hook": "[REDACTED]", "bot": "[REDACTED]", "name": "Support"}'::jsonb,
    'the audit trail redacts passphrase and encryption_key columns, webhook URLs and Telegram bot tokens, and keeps ordinary values');
select is((select count(*)::int from public.audit_logs
            where coalesce(new_data ->> 'ciphertext', '[REDACTED]') <> '[REDACTED]'
               or coalesce(old_data ->> 'ciphertext', '[REDACTED]') <> '[REDACTED]'
               or coalesce(new_data ->> 'token_hash', '[REDACTED]') <> '[REDACTED]'
               or coalesce(old_data ->> 'token_hash', '[REDACTED]') <> '[REDACTED]'), 0,
    'audit rows never contain credentials or token hashes');
update public.chatbots
   set system_prompt = 'Call the API with sk_live_51HqTrVAbCdEfGhIjKlMnOp when asked.', name = name || ' (audited)'
 where company_id = tests.company_id('A') and id = tests.chatbot_id('A', 'spare');
select is(
    (select string_agg(format('%s / %s', new_data ->> 'system_prompt', new_data ->> 'name' like '%(audited)'), ', ')
       from public.audit_logs
      where table_name = 'chatbots' and action = 'update' and company_id = tests.company_id('A')
        and row_id = tests.chatbot_id('A', 'spare')
        and 'system_prompt' = any (changed_columns)),
    '[REDACTED] / t',
    'audit rows redact values shaped like secrets whatever the column is called, and keep ordinary values');
select is((select count(*)::int from public.audit_logs
            where table_name = 'companies' and action = 'update'
              and changed_columns <@ array['current_document_count', 'current_storage_bytes', 'current_integration_count', 'updated_at']), 0,
    'live counter bookkeeping on companies is not audited');

-- rule: audit-append-only (docs/rules.md)
select tests.act_as_service();
select throws_ok($$ update public.audit_logs set action = 'custom' $$,
    '42501', null, 'audit rows cannot be updated, even by service_role');
select throws_ok($$ delete from public.audit_logs $$,
    '42501', null, 'audit rows cannot be deleted, even by service_role');
select tests.act_as_superuser();
select throws_ok($$ update public.audit_logs set actor_role = 'x' $$,
    '42501', null, 'audit rows cannot be updated, even by the table owner');
select throws_ok($$ truncate public.audit_logs $$,
    '42501', null, 'audit logs cannot be truncated');
-- The purge hook cannot be opened by a setting: neither by a client nor by a value planted
-- earlier in a (pooled) session; only private.purge_audit_logs' own transaction matches.
select tests.act_as_service();
select set_config('neurant.audit_purge', 'on', true);
select throws_ok($$ delete from public.audit_logs $$,
    '42501', null, 'service_role cannot open the audit purge hook by setting neurant.audit_purge');
select tests.act_as_superuser();
select set_config('neurant.audit_purge', 'on', true);
select throws_ok($$ delete from public.audit_logs $$,
    '42501', null, 'a neurant.audit_purge value set outside private.purge_audit_logs does not open the purge hook, even for the table owner');

select tests.act_as('A', 'operador');
select is((select count(*)::int from public.audit_logs), 0,
    'an operador cannot read audit logs');
select tests.act_as('A', 'owner');
select ok((select count(*) > 0 and bool_and(company_id = tests.company_id('A')) from public.audit_logs),
    'an owner reads the audit trail of their own company only');

select * from finish();
rollback;
