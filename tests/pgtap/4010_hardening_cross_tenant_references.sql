-- Hardening (cross-tenant references): a row of company A tries to point at a
-- chatbot, conversation, message, document, chunk, integration or member of
-- company B through every foreign-key path, as service_role (which bypasses
-- RLS, so only the tenant-consistent keys stop it) and as a member of A.
begin;
select plan(34);

-- Run a statement as p_identity (tests.become), always rolled back: 'ok' or
-- 'SQLSTATE: message' (uuids replaced by <id>).
create function pg_temp.outcome(p_identity text, p_sql text) returns text
language plpgsql as $$
declare
  v text;
begin
  begin
    perform tests.become(p_identity);
    execute p_sql;
    v := 'ok';
    raise exception using errcode = 'NX998';
  exception
    when sqlstate 'NX998' then null;
    when others then
      v := sqlstate || ': ' || regexp_replace(sqlerrm, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g');
  end;
  perform tests.act_as_superuser();
  return v;
end $$;

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
  array['user_invitations.user_invitations_token_hash_key', 'users.users_auth_user_id_key'] collate "C",
  'the only unique keys of tenant tables without company_id are the auth identity and the invitation token hash (neither writable by members)');

-- service_role: every FK path into another company fails -----------------------------
select is(pg_temp.outcome('service_role', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
  values (tests.company_id('A'), tests.chatbot_id('B', 'assigned'), tests.user_id('A', 'operador')) $$),
  '23503: insert or update on table "chatbot_operators" violates foreign key constraint "chatbot_operators_chatbot_fkey"',
  'an assignment cannot reference another company''s chatbot, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
  values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('B', 'operador')) $$),
  '23503: insert or update on table "chatbot_operators" violates foreign key constraint "chatbot_operators_user_fkey"',
  'an assignment cannot reference another company''s operador, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id, assigned_by)
  values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('A', 'operador'), tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "chatbot_operators" violates foreign key constraint "chatbot_operators_assigned_by_fkey"',
  'an assignment cannot name another company''s member as assigner, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
  values (tests.company_id('A'), tests.chatbot_id('B', 'assigned'), 'x', 'web') $$),
  '23503: insert or update on table "conversations" violates foreign key constraint "conversations_chatbot_fkey"',
  'a conversation cannot reference another company''s chatbot, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel, assigned_operator_id)
  values (tests.company_id('A'), tests.chatbot_id('A', 'assigned'), 'x', 'web', tests.user_id('B', 'administrador')) $$),
  '23503: insert or update on table "conversations" violates foreign key constraint "conversations_assigned_operator_fkey"',
  'a conversation cannot be assigned to another company''s member, even for service_role');
select is(pg_temp.outcome('service_role', $$ update public.conversations set assigned_operator_id = tests.user_id('B', 'supervisor')
   where company_id = tests.company_id('A') and id = tests.conversation_id('A', 'assigned-human') $$),
  '23503: insert or update on table "conversations" violates foreign key constraint "conversations_assigned_operator_fkey"',
  'a conversation cannot be re-assigned to another company''s member, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
  values (tests.company_id('A'), tests.conversation_id('B', 'assigned-human'), 'bot', 'x') $$),
  '23503: conversation <id> does not exist in company <id>',
  'a message cannot reference another company''s conversation, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
  values (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), tests.chatbot_id('B', 'assigned'), 'end_user', 'x') $$),
  '23503: insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"',
  'a message cannot carry another company''s chatbot_id, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.messages (company_id, conversation_id, sender_type, sender_id, content)
  values (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), 'operator', tests.user_id('B', 'operador'), 'x') $$),
  '23503: insert or update on table "messages" violates foreign key constraint "messages_sender_fkey"',
  'a message cannot name another company''s member as sender, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.message_reactions (company_id, message_id, conversation_id, chatbot_id, reaction)
  values (tests.company_id('A'), tests.message_id('B', 'assigned-human/bot'), tests.conversation_id('B', 'assigned-human'), tests.chatbot_id('B', 'assigned'), 'thumbs_up') $$),
  '23503: insert or update on table "message_reactions" violates foreign key constraint "message_reactions_message_fkey"',
  'a reaction cannot reference another company''s message, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.message_reactions (company_id, message_id, reaction)
  values (tests.company_id('A'), tests.message_id('B', 'assigned-human/bot'), 'thumbs_up') $$),
  '23502: null value in column "conversation_id" of relation "message_reactions" violates not-null constraint',
  'a reaction''s keys are never filled from another company''s message');
select is(pg_temp.outcome('service_role', $$ insert into public.message_reactions (company_id, message_id, reaction, created_by)
  values (tests.company_id('A'), tests.message_id('A', 'assigned-human/bot'), 'thumbs_up', tests.user_id('B', 'supervisor')) $$),
  '23503: insert or update on table "message_reactions" violates foreign key constraint "message_reactions_created_by_fkey"',
  'a reaction cannot name another company''s member as author, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason)
  values (tests.company_id('A'), tests.conversation_id('B', 'assigned-human'), tests.chatbot_id('B', 'assigned'), 'manual') $$),
  '23503: insert or update on table "hitl_escalations" violates foreign key constraint "hitl_escalations_conversation_fkey"',
  'an escalation cannot reference another company''s conversation, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason, escalated_by)
  values (tests.company_id('A'), tests.conversation_id('A', 'assigned-human'), tests.chatbot_id('A', 'assigned'), 'manual', tests.user_id('B', 'supervisor')) $$),
  '23503: insert or update on table "hitl_escalations" violates foreign key constraint "hitl_escalations_escalated_by_fkey"',
  'an escalation cannot name another company''s member, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.documents (company_id, title, mime_type, storage_path, uploaded_by)
  values (tests.company_id('A'), 't', 'text/plain', 'x/y.txt', tests.user_id('B', 'administrador')) $$),
  '23503: insert or update on table "documents" violates foreign key constraint "documents_uploaded_by_fkey"',
  'a document cannot name another company''s member as uploader, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.document_chunks (company_id, document_id, chunk_index, content)
  values (tests.company_id('A'), tests.document_id('B', 'account fees'), 9, 'x') $$),
  '23503: insert or update on table "document_chunks" violates foreign key constraint "document_chunks_document_fkey"',
  'a chunk cannot reference another company''s document, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.knowledge_queries (company_id, message_id, conversation_id, chatbot_id, chunk_id, similarity, rank)
  values (tests.company_id('A'), tests.message_id('B', 'assigned-human/bot'), tests.conversation_id('B', 'assigned-human'),
          tests.chatbot_id('B', 'assigned'), tests.chunk_id('A', 'returns policy #0'), 0.5, 7) $$),
  '23503: insert or update on table "knowledge_queries" violates foreign key constraint "knowledge_queries_message_fkey"',
  'a knowledge query cannot reference another company''s message, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.knowledge_queries (company_id, message_id, chunk_id, similarity, rank)
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
select is(pg_temp.outcome('service_role', $$ insert into public.integration_logs (company_id, integration_id, direction, operation, status)
  values (tests.company_id('A'), tests.integration_id('B', 'with credentials'), 'inbound', 'x', 'success') $$),
  '23503: insert or update on table "integration_logs" violates foreign key constraint "integration_logs_integration_fkey"',
  'an integration log cannot reference another company''s integration, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into private.integration_credentials (company_id, integration_id, ciphertext, key_id)
  values (tests.company_id('A'), tests.integration_id('B', 'with credentials'), tests.fake_envelope('x'), 'k') $$),
  '23503: insert or update on table "integration_credentials" violates foreign key constraint "integration_credentials_integration_fkey"',
  'credentials cannot be attached to another company''s integration, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into private.integration_credentials (company_id, integration_id, ciphertext, key_id, updated_by)
  values (tests.company_id('A'), tests.integration_id('A', 'without credentials'), tests.fake_envelope('x'), 'k', tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "integration_credentials" violates foreign key constraint "integration_credentials_updated_by_fkey"',
  'credentials cannot name another company''s member as writer, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.analytics_daily (company_id, chatbot_id, day)
  values (tests.company_id('A'), tests.chatbot_id('B', 'assigned'), '2026-11-01') $$),
  '23503: insert or update on table "analytics_daily" violates foreign key constraint "analytics_daily_chatbot_fkey"',
  'analytics cannot reference another company''s chatbot, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.chatbots (company_id, name, system_prompt, created_by)
  values (tests.company_id('A'), 'n', 'p', tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "chatbots" violates foreign key constraint "chatbots_created_by_fkey"',
  'a chatbot cannot name another company''s member as creator, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.integrations (company_id, type, name, created_by)
  values (tests.company_id('A'), 'webhook', 'n', tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "integrations" violates foreign key constraint "integrations_created_by_fkey"',
  'an integration cannot name another company''s member as creator, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.user_invitations (company_id, email, role, token_hash, invited_by)
  values (tests.company_id('A'), 'z@example.com', 'operador', sha256('zz'::bytea), tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "user_invitations" violates foreign key constraint "user_invitations_invited_by_fkey"',
  'an invitation cannot name another company''s member as inviter, even for service_role');
select is(pg_temp.outcome('service_role', $$ insert into public.users (company_id, auth_user_id, email, role, invited_by)
  values (tests.company_id('A'), tests.no_company_auth_id(), 'nocompany@example.com', 'operador', tests.user_id('B', 'owner')) $$),
  '23503: insert or update on table "users" violates foreign key constraint "users_invited_by_fkey"',
  'a member cannot be recorded as invited by another company''s member, even for service_role');

-- Members of A: the same paths fail for them too -------------------------------------
select is(pg_temp.outcome('operador', $$ insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
  values (tests.company_id('A'), tests.conversation_id('A', 'unassigned-human'), tests.chatbot_id('A', 'assigned'), 'operator', 'x') $$),
  '23503: insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"',
  'an operador cannot write into an unassigned chatbot''s conversation by naming an assigned chatbot_id');
select is(pg_temp.outcome('operador', $$ insert into public.message_reactions (company_id, message_id, conversation_id, chatbot_id, reaction)
  values (tests.company_id('A'), tests.message_id('A', 'unassigned-human/bot'), tests.conversation_id('A', 'assigned-human'),
          tests.chatbot_id('A', 'assigned'), 'thumbs_up') $$),
  '23503: insert or update on table "message_reactions" violates foreign key constraint "message_reactions_message_fkey"',
  'an operador cannot react to an unassigned chatbot''s message by naming an assigned chatbot_id');
select is(pg_temp.outcome('owner', $$ insert into public.document_chunks (company_id, document_id, chunk_index, content)
  values (tests.company_id('A'), tests.document_id('B', 'account fees'), 9, 'x') $$),
  '23503: insert or update on table "document_chunks" violates foreign key constraint "document_chunks_document_fkey"',
  'an owner cannot add a chunk to another company''s document');

-- The tenant guard (finding H-1, fixed by 4000_hardening_tenant_insert_guard) ----------
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
select is(pg_temp.outcome('no_company', $$ insert into public.message_reactions (company_id, message_id, reaction)
  values (tests.company_id('B'), tests.message_id('B', 'assigned-human/bot'), 'thumbs_up') $$),
  '42501: new row violates row-level security policy for table "message_reactions"',
  'an identity without a company cannot write a row into any company');

select * from finish();
rollback;
