-- Business rules of the knowledge, integrations and analytics domains
-- (migrations 2000-2999): plan limits on documents/storage/integrations,
-- tenant-scoped top-k search on the HNSW index, secret-free config, role-scoped
-- reads, tenant-consistent references (also for service_role) and the idempotent
-- roll-up. Credentials: 2010; the audit trail: 0050.
begin;
select plan(52);

-- Documents: access ------------------------------------------------------------
select tests.act_as('A', 'operador');
select is((select count(*)::int from public.documents), 2,
    'an operador reads the documents of their company');
select is((select count(*)::int from public.document_chunks), 3,
    'an operador reads the chunks of their company and none of another company');
select throws_ok($$ insert into public.documents (company_id, title, mime_type, storage_path, size_bytes)
                    values (tests.company_id('A'), 'x', 'text/plain', 'docs/x.txt', 1) $$,
    '42501', null, 'an operador cannot upload documents');

select tests.act_as('A', 'supervisor');
select is(tests.affected_rows($$ update public.documents set title = 'changed' $$), 0::bigint,
    'a supervisor cannot edit documents');

select tests.act_as('A', 'administrador');
select lives_ok($$ insert into public.documents (company_id, id, title, mime_type, storage_path, size_bytes)
                   values (tests.company_id('A'), tests.new_id('document', 'A', 'warranty'),
                           'Warranty', 'application/pdf', 'docs/warranty.pdf', 1000) $$,
    'an administrador can upload a document');
select is((select uploaded_by from public.documents where id = tests.document_id('A', 'warranty')),
    tests.user_id('A', 'administrador'),
    'uploaded_by is the uploading member');
select throws_ok($$ insert into public.documents (company_id, title, mime_type, storage_path, size_bytes)
                    values (tests.company_id('B'), 'x', 'text/plain', 'docs/x.txt', 1) $$,
    '42501', null, 'an administrador cannot upload a document into another company');

-- rule: knowledge-limits (docs/rules.md)
-- Documents: plan limits and exact counters ----------------------------------------
select tests.act_as_superuser();
create temporary table t_counters as
  select current_document_count, current_storage_bytes from public.companies where id = tests.company_id('A');
select tests.act_as('A', 'owner');
insert into public.documents (company_id, id, title, mime_type, storage_path, size_bytes)
values (tests.company_id('A'), tests.new_id('document', 'A', 'sizes'), 'Sizes', 'text/plain', 'docs/sizes.txt', 700),
       (tests.company_id('A'), tests.new_id('document', 'A', 'sizes 2'), 'Sizes 2', 'text/plain', 'docs/sizes2.txt', 300);
select tests.act_as_service();
update public.documents set size_bytes = 1500 where id = tests.document_id('A', 'sizes');
select tests.act_as('A', 'owner');
select tests.member_delete('public.documents', $$ id = tests.document_id('A', 'sizes 2') $$);
select tests.act_as_superuser();
select results_eq(
    $$ select c.current_document_count - t.current_document_count, c.current_storage_bytes - t.current_storage_bytes
         from public.companies c, t_counters t where c.id = tests.company_id('A') $$,
    $$ values (1, 1500::bigint) $$,
    'storage bytes are counted exactly (insert, size change and delete)');
select is((select current_document_count::bigint from public.companies where id = tests.company_id('A')),
          (select count(*) from public.documents where company_id = tests.company_id('A')),
    'the document counter equals the number of documents');

update public.companies set subscription_plan = 'free' where id = tests.company_id('A');
update public.companies set current_document_count = 20 where id = tests.company_id('A');
select tests.act_as('A', 'administrador');
select throws_ok($$ insert into public.documents (company_id, title, mime_type, storage_path, size_bytes)
                    values (tests.company_id('A'), 'One too many', 'text/plain', 'docs/too-many.txt', 10) $$,
    'NA001', null, 'the document limit of the plan cannot be exceeded');
select tests.act_as_superuser();
update public.companies set current_document_count = 0 where id = tests.company_id('A');
select tests.act_as('A', 'administrador');
select throws_ok($$ insert into public.documents (company_id, title, mime_type, storage_path, size_bytes)
                    values (tests.company_id('A'), 'Huge', 'video/mp4', 'docs/huge.mp4', 60::bigint * 1024 * 1024) $$,
    'NA001', null, 'the storage limit of the plan cannot be exceeded');
select tests.act_as_service();
select throws_ok($$ update public.documents set size_bytes = 60::bigint * 1024 * 1024 where id = tests.document_id('A', 'sizes') $$,
    'NA001', null, 'growing a document beyond the storage limit is refused');
select tests.act_as_superuser();
update public.companies set subscription_plan = 'enterprise' where id = tests.company_id('A');

-- Chunks ---------------------------------------------------------------------------
select is((select chunk_count from public.documents where id = tests.document_id('A', 'returns policy')), 3,
    'documents.chunk_count equals the number of its chunks');
select tests.act_as_service();
select throws_ok($$ insert into public.document_chunks (company_id, document_id, chunk_index, content)
                    values (tests.company_id('B'), tests.document_id('A', 'returns policy'), 9, 'x') $$,
    '23503', null, 'a chunk can never belong to a document of another company, even for service_role');

-- rule: tenant-scoped-search (docs/rules.md)
-- Top-k search ------------------------------------------------------------------------
select tests.act_as('A', 'operador');
select is((select array_agg(chunk_id order by similarity desc)
             from public.match_document_chunks(tests.axis_embedding(1), 10)),
    array[tests.chunk_id('A', 'returns policy #0'), tests.chunk_id('A', 'returns policy #1'),
          tests.chunk_id('A', 'returns policy #2')]::uuid[],
    'top-k search only returns chunks of the caller''s company, nearest first');
select is((select count(*)::int from public.match_document_chunks(tests.axis_embedding(1), 10, 0.95)), 1,
    'top-k search drops chunks below the similarity threshold');
select is((select count(*)::int from public.match_document_chunks(tests.axis_embedding(1), 2)), 2,
    'top-k search returns at most p_match_count chunks');
select is((select count(*)::int
             from public.match_document_chunks_for_company(tests.company_id('B'), tests.axis_embedding(1), 10)), 0,
    'an authenticated caller cannot search another company''s chunks by passing its id');
select throws_ok($$ select * from public.match_document_chunks(tests.axis_embedding(1), 0) $$,
    '22023', null, 'top-k search refuses a match count outside 1..100');

select tests.act_as_no_company();
select is((select count(*)::int from public.match_document_chunks(tests.axis_embedding(1), 10)), 0,
    'top-k search returns nothing to a user without a company');

select tests.act_as_service();
select is((select array_agg(chunk_id)
             from public.match_document_chunks_for_company(tests.company_id('B'), tests.axis_embedding(1), 10)),
    array[tests.chunk_id('B', 'account fees #0')]::uuid[],
    'the bot engine (service_role) searches exactly one company');

select tests.act_as('A', 'administrador');
set local enable_seqscan = off;
set local enable_sort = off;
select matches(
    (select string_agg(p, E'\n') from tests.explain_lines(
       $$ select ch.id from public.document_chunks ch
           where ch.company_id = tests.company_id('A')
           order by ch.embedding operator(extensions.<=>) tests.axis_embedding(2) limit 5 $$) p),
    'Index Scan using document_chunks_embedding_hnsw_idx',
    'the HNSW index is used for top-k search within a company');
select tests.act_as_superuser();  -- client roles may not create temp tables (0590)
create temporary table t_scans as
  select pg_stat_get_xact_numscans('public.document_chunks_embedding_hnsw_idx'::regclass) as n;
grant select on t_scans to authenticated;
select tests.act_as('A', 'administrador');
select is((select count(*)::int from public.match_document_chunks(tests.axis_embedding(2), 3)), 3,
    'top-k search on the HNSW index still fills k rows of the caller''s company');
select tests.act_as_superuser();  -- the activity counters are not the request roles' (0590)
select cmp_ok(pg_stat_get_xact_numscans('public.document_chunks_embedding_hnsw_idx'::regclass), '>', (select n from t_scans),
    'match_document_chunks scans the HNSW index');
reset enable_seqscan;
reset enable_sort;
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.knowledge_queries), 2,
    'a supervisor reads every knowledge query of their company');
select tests.act_as_service();
select throws_ok($$ insert into public.knowledge_queries (company_id, message_id, conversation_id, chatbot_id, chunk_id, similarity, rank)
                    select k.company_id, k.message_id, k.conversation_id, tests.chatbot_id('A', 'unassigned'), k.chunk_id, 0.5, 9
                      from public.knowledge_queries k where k.id = tests.knowledge_query_id('A', 'assigned') $$,
    '23503', null, 'a knowledge query''s chatbot must be the chatbot of its message');

-- rule: no-secrets-in-config (docs/rules.md)
-- Integrations --------------------------------------------------------------------------
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.integrations), 0,
    'a supervisor cannot read integration configuration');
select tests.act_as('A', 'administrador');
select is((select count(*)::int from public.integrations), 2,
    'an administrador reads the integrations of their company');
select throws_ok($$ insert into public.integrations (company_id, type, name, config)
                    values (tests.company_id('A'), 'slack', 'Slack', '{"channel": "#support", "bot_token": "xoxb-1"}') $$,
    '23514', null, 'config must not contain secrets');
select throws_ok($$ update public.integrations set config = '{"auth": {"Client-Secret": "s3cr3t"}}'
                     where id = tests.integration_id('A', 'without credentials') $$,
    '23514', null, 'config must not contain secrets at any depth');
-- Secrets by value, under any key, at any depth (arrays included): the shapes of
-- well-known tokens and keys, long high-entropy strings, credentials in URLs.
select is((select string_agg(c.label, ', ' order by c.label)
             from (values
               ('jwt', '{"note": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}'),
               ('stripe live key', '{"stripe": {"account": "sk_live_51HqTrVAbCdEfGhIjKlMnOp"}}'),
               ('openai key', '{"llm": ["gpt", "sk-proj-abcdefghijklmnopqrstuvwx"]}'),
               ('slack bot token', '{"deep": {"list": [{"value": "xoxb-123456789012-abcdefABCDEF"}]}}'),
               ('slack user token', '{"x": "xoxp-123456789012-1234567890-abcdef"}'),
               ('github token', '{"repo": "ghp_16C7e42F292c6912E7710c838347Ae178B4a"}'),
               ('aws access key id', '{"aws": "AKIAIOSFODNN7EXAMPLE"}'),
               ('pem private key', '{"cert": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow==\n-----END RSA PRIVATE KEY-----"}'),
               ('bearer header', '{"headers": {"X-Auth": "Bearer abcdef0123456789abcdef"}}'),
               ('url with userinfo', '{"endpoint": "https://admin:hunter2@api.example.com/v1"}'),
               ('long hex', '{"hmac": "4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807f6e5d4c3b2a19080"}'),
               ('long base64', '{"blob": "Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2RlZg=="}'),
               ('long base64url', '{"k": ["x", ["y", "q8Xv_2LmP0zR7tY-wK3nB5sD9fG1hJ4c"]]}')
             ) c(label, cfg)
            where tests.attempt_as('administrador', format(
                    'update public.integrations set config = %L::jsonb where id = %L',
                    c.cfg, tests.integration_id('A', 'without credentials'))) not like '23514:%'),
    null, 'config refuses values shaped like secrets under any key and at any depth (tokens, keys, high-entropy strings, credentials in URLs)');
-- One made-up sample per family of the maintained scanners' rule sets (issue 20, item 5).
select is((select string_agg(c.label, ', ' order by c.label)
             from (values
               ('telegram bot token', '{"bot": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"}'),
               ('slack webhook url', '{"notify": "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/cCcCcCcCcCcCcCcCcCcCcCcC"}'),
               ('discord webhook url', '{"notify": ["https://discord.com/api/webhooks/112233445566778899/aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"]}'),
               ('access_token in a url', '{"feed": "https://api.example.com/v1/items?page=2&access_token=abc123def456"}'),
               ('jdbc password', '{"db": "jdbc:postgresql://db.example.com:5432/app?user=app&password=hunter2hunter2"}'),
               ('ado.net password', '{"db": "Server=tcp:db.example.com;Database=app;User Id=app;Password=Hunter2!x;"}'),
               ('libpq password', '{"db": "host=db.example.com dbname=app user=app password=hunter2hunter2"}'),
               ('azure account key', '{"blob": "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=bm90IGEgcmVhbCBrZXk="}'),
               ('aws secret access key', '{"s3": {"region": "eu-west-1", "x": "q9Zr3Xv7LmPa2Tn8Wb4Yc6Hd1Jf5Kg0Se/Ru+Vt2"}}'),
               ('sendgrid key', '{"mail": "SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789abcdefghijklmnopqrstuvwxyzABCD"}'),
               ('google api key', '{"maps": "AIzaXy0123456789abcdefghijklmnopqrstuvw"}'),
               ('gitlab token', '{"ci": "glpat-abcdefghij0123456789"}'),
               ('passphrase key', '{"tls": {"passphrase": "correct horse battery"}}'),
               ('encryption_key key', '{"storage": {"encryption_key": "kms-alias-1"}}'),
               -- inside a sentence, so that only the vendor pattern (not the long-token rule) can catch them
               ('mailgun key', '{"note": "mail with key-5URYX45jqRO25g3uK5kbAAegiuE8LCAn please"}'),
               ('npm token', '{"note": "publish with npm_muO6RvvBfOHZ1FzfnKpcmgfmqSWstSqkNh5b from ci"}'),
               ('pypi token', '{"note": "upload with pypi-rTo21oKpdaZPNtriSPvMUC6j7OrJ1Bkkz7T3hSiXLBwoh6MdHmBll1fhY4sa now"}'),
               ('shopify token', '{"note": "shop token 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 here"}'),
               ('digitalocean token', '{"note": "droplets via dop_v1_767394c42ef0569c396b943081cb9ce32f602a058930166c2b9e14ccc80e2fa7 ok"}'),
               ('hugging face token', '{"note": "models via hf_XmsC4vynNdwifV0xbWhEpIjsXUaiRxwHjb ok"}'),
               ('twilio api key', '{"note": "sms key SK7de7cc992f8b4e7f4ba43816bc69f544 ok"}'),
               ('teams webhook url', '{"notify": "https://acme.webhook.office.com/webhookb2/a1b2c3@d4e5f6/IncomingWebhook/0a1b/2c3d"}')
             ) c(label, cfg)
            where tests.attempt_as('administrador', format(
                    'update public.integrations set config = %L::jsonb where id = %L',
                    c.cfg, tests.integration_id('A', 'without credentials'))) not like '23514:%'),
    null, 'config refuses every secret family: Telegram bot tokens, Slack/Discord/Teams webhook URLs, credentials in query and connection strings, AWS secret keys, SendGrid/Google/Mailgun/GitLab/npm/PyPI/Shopify/DigitalOcean/Hugging Face/Twilio keys, passphrase and encryption_key keys');
select is((select string_agg(c.label, ', ' order by c.label)
             from (values
               ('webhook url', '{"webhook_url": "https://hooks.example.com/services/inbound?channel=support"}'),
               ('phone number', '{"from": "+34 600 123 456", "to": ["+1-202-555-0143"]}'),
               ('channel ids', '{"channel": "#support", "channel_id": "C024BE91L", "team": "T0001"}'),
               ('hex colors', '{"theme": {"primary": "#1f6feb", "accent": "#FFAA00"}}'),
               ('uuid', json_build_object('workspace_id', gen_random_uuid())::text),
               ('long words', '{"label": "customer_support_escalations_channel_main", "greeting": "Hola, ¿en qué podemos ayudarte hoy con tu pedido?"}'),
               ('email and numbers', '{"reply_to": "soporte@example.com", "retries": 3, "timeout_ms": 15000, "enabled": true}'),
               ('paths', '{"folder": "Company/Shared/Knowledge/Returns2024/Drafts", "file": "manuals/ReturnsPolicy-v2.pdf"}'),
               ('query strings and chat ids', '{"search": "https://example.com/search?page=2&q=hello", "chat_id": "123456789", "db": "jdbc:postgresql://db:5432/app?ssl=true"}')
             ) c(label, cfg)
            where tests.attempt_as('administrador', format(
                    'update public.integrations set config = %L::jsonb where id = %L',
                    c.cfg, tests.integration_id('A', 'without credentials'))) <> 'ok'),
    null, 'ordinary config (webhook urls without credentials, phone numbers, channel ids, hex colors, uuids, text) is accepted');

select tests.act_as_superuser();
update public.companies set subscription_plan = 'free' where id = tests.company_id('A');
select tests.act_as('A', 'owner');
select throws_ok($$ insert into public.integrations (company_id, type, name) values (tests.company_id('A'), 'email', 'Mailbox') $$,
    'NA001', null, 'the integration limit of the plan cannot be exceeded');
select tests.act_as_superuser();
update public.companies set subscription_plan = 'enterprise' where id = tests.company_id('A');

-- Integration logs ------------------------------------------------------------------------
select tests.act_as('A', 'owner');
select is((select count(*)::int from public.integration_logs), 2,
    'an owner reads the integration logs of their company');
select throws_ok($$ insert into public.integration_logs (company_id, integration_id, direction, operation, status)
                    values (tests.company_id('A'), tests.integration_id('A', 'with credentials'), 'outbound', 'x', 'success') $$,
    '42501', null, 'integration logs are written only by service_role');
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.integration_logs), 0,
    'a supervisor cannot read integration logs');
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.analytics_daily), 2,
    'a supervisor reads all analytics of their company');
select tests.act_as('A', 'owner');
select throws_ok($$ update public.analytics_daily set messages_count = 0 $$,
    '42501', null, 'analytics are written only by service_role jobs');

select tests.act_as_service();
call public.refresh_analytics_daily((now() at time zone 'UTC')::date);
create temporary table t_rollup as
  select * from public.analytics_daily where day = (now() at time zone 'UTC')::date;
call public.refresh_analytics_daily((now() at time zone 'UTC')::date);
select is((select sum(messages_count)::bigint from public.analytics_daily where day = (now() at time zone 'UTC')::date),
          (select count(*) from public.messages
            where created_at >= (now() at time zone 'UTC')::date::timestamp at time zone 'UTC'
              and created_at < ((now() at time zone 'UTC')::date + 1)::timestamp at time zone 'UTC'),
    'the daily roll-up counts every message of the day exactly once');
select set_eq(
    $$ select company_id, chatbot_id, messages_count, bot_messages_count, conversations_count, knowledge_queries_count
         from public.analytics_daily where day = (now() at time zone 'UTC')::date $$,
    $$ select company_id, chatbot_id, messages_count, bot_messages_count, conversations_count, knowledge_queries_count from t_rollup $$,
    'the daily roll-up is idempotent (running it twice gives the same rows)');

-- Cross-company references (service_role bypasses RLS: only the keys stop it) ----------------
select is(tests.attempt_as('service_role', $$ insert into public.documents (company_id, title, mime_type, storage_path, uploaded_by)
  values (tests.company_id('A'), 't', 'text/plain', 'x/y.txt', tests.user_id('B', 'administrador')) $$),
  '23503: insert or update on table "documents" violates foreign key constraint "documents_uploaded_by_fkey"',
  'a document cannot name another company''s member as uploader, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.document_chunks (company_id, document_id, chunk_index, content)
  values (tests.company_id('A'), tests.document_id('B', 'account fees'), 9, 'x') $$),
  '23503: insert or update on table "document_chunks" violates foreign key constraint "document_chunks_document_fkey"',
  'a chunk cannot reference another company''s document, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.knowledge_queries (company_id, message_id, conversation_id, chatbot_id, chunk_id, similarity, rank)
  values (tests.company_id('A'), tests.message_id('B', 'assigned-human/bot'), tests.conversation_id('B', 'assigned-human'),
          tests.chatbot_id('B', 'assigned'), tests.chunk_id('A', 'returns policy #0'), 0.5, 7) $$),
  '23503: insert or update on table "knowledge_queries" violates foreign key constraint "knowledge_queries_message_fkey"',
  'a knowledge query cannot reference another company''s message, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.knowledge_queries (company_id, message_id, chunk_id, similarity, rank)
  values (tests.company_id('A'), tests.message_id('A', 'assigned-human/bot'), tests.chunk_id('B', 'account fees #0'), 0.5, 7) $$),
  '23502: null value in column "document_id" of relation "knowledge_queries" violates not-null constraint',
  'a knowledge query cannot reference another company''s chunk, even for service_role');
select tests.act_as_service();
insert into public.knowledge_queries (company_id, id, message_id, chunk_id, document_id, similarity, rank)
values (tests.company_id('A'), tests.new_id('knowledge_query', 'A', 'foreign document'), tests.message_id('A', 'assigned-human/bot'),
        tests.chunk_id('A', 'returns policy #0'), tests.document_id('B', 'account fees'), 0.5, 7);
select tests.act_as_superuser();
select is((select document_id from public.knowledge_queries where id = tests.knowledge_query_id('A', 'foreign document')),
  tests.document_id('A', 'returns policy'),
  'a knowledge query''s document is always its chunk''s: another company''s document_id is replaced, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.integration_logs (company_id, integration_id, direction, operation, status)
  values (tests.company_id('A'), tests.integration_id('B', 'with credentials'), 'inbound', 'x', 'success') $$),
  '23503: insert or update on table "integration_logs" violates foreign key constraint "integration_logs_integration_fkey"',
  'an integration log cannot reference another company''s integration, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.analytics_daily (company_id, chatbot_id, day)
  values (tests.company_id('A'), tests.chatbot_id('B', 'assigned'), '2026-11-01') $$),
  '23503: insert or update on table "analytics_daily" violates foreign key constraint "analytics_daily_chatbot_fkey"',
  'analytics cannot reference another company''s chatbot, even for service_role');
select is(tests.attempt_as('service_role', $$ insert into public.integrations (company_id, type, name, created_by)
  values (tests.company_id('A'), 'webhook', 'n', tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "integrations" violates foreign key constraint "integrations_created_by_fkey"',
  'an integration cannot name another company''s member as creator, even for service_role');
select is(tests.attempt_as('owner', $$ insert into public.document_chunks (company_id, document_id, chunk_index, content)
  values (tests.company_id('A'), tests.document_id('B', 'account fees'), 9, 'x') $$),
  '23503: insert or update on table "document_chunks" violates foreign key constraint "document_chunks_document_fkey"',
  'an owner cannot add a chunk to another company''s document');
select is(tests.same_either_way('owner', $$ insert into public.document_chunks (company_id, document_id, chunk_index, content)
    values (tests.company_id('A'), $1, 0, 'probe') $$, array[tests.document_id('B', 'account fees')]),
  'same: 23503: insert or update on table "document_chunks" violates foreign key constraint "document_chunks_document_fkey"',
  'a chunk pointing at another company''s document fails exactly like one pointing at no document');

-- System metrics ----------------------------------------------------------------------------------
select tests.act_as('A', 'owner');
select throws_ok($$ select * from public.system_metrics $$,
    '42501', null, 'system metrics are not readable by company members');

select * from finish();
rollback;
