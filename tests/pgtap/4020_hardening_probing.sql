-- Hardening (probing other tenants): a caller proposes another company's ids
-- and compares the outcome with the one for ids that exist nowhere. Unique
-- keys, foreign keys, triggers and every RPC must answer the same either way,
-- and no RPC may change or return another company's rows.
begin;
select plan(16 + 2 * (select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                       where n.nspname = 'public' and p.prokind = 'f' and p.prorettype <> 'trigger'::regtype
                         and has_function_privilege('authenticated', p.oid, 'EXECUTE')
                         and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')));

-- Outcome of a statement run as p_identity (tests.become), always rolled back:
-- 'ok: <result>' or 'SQLSTATE: message', with uuids, 64-hex tokens and
-- timestamps normalised. Prefixed with 'CHANGED COMPANY B' when company B's
-- rows differ afterwards (checked inside the same subtransaction).
create function pg_temp.b_fingerprint() returns text
language plpgsql as $$
declare
  r record;
  v text;
  acc text := '';
begin
  for r in select c.oid::regclass as rel, case when c.oid = 'public.companies'::regclass then 'id' else 'company_id' end as col
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('public', 'private') and c.relkind in ('r', 'p')
              and (c.oid = 'public.companies'::regclass
                   or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'company_id' and not a.attisdropped))
            order by 1
  loop
    execute format('select md5(coalesce(string_agg(to_jsonb(t)::text, '','' order by to_jsonb(t)::text), '''')) from %s t where %I = %L',
                   r.rel, r.col, tests.company_id('B')) into v;
    acc := acc || r.rel::text || ':' || v || ';';
  end loop;
  return md5(acc);
end $$;

create function pg_temp.normalise(p text) returns text
language sql immutable as $$
  select regexp_replace(regexp_replace(regexp_replace(p,
    '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g'),
    '[0-9a-f]{64}', '<token>', 'g'),
    '\d{4}-\d\d-\d\d[ T][0-9:.+-]+', '<ts>', 'g')
$$;

create function pg_temp.outcome(p_identity text, p_sql text) returns text
language plpgsql as $$
declare
  v_before text := pg_temp.b_fingerprint();
  v_after text;
  v text;
begin
  begin
    perform tests.become(p_identity);
    execute p_sql into v;
    v := 'ok: ' || coalesce(v, '<null>');
    perform tests.act_as_superuser();
    v_after := pg_temp.b_fingerprint();
    raise exception using errcode = 'NX998';
  exception
    when sqlstate 'NX998' then null;
    when others then v := sqlstate || ': ' || sqlerrm;
  end;
  perform tests.act_as_superuser();
  return case when v_after is distinct from v_before and v like 'ok:%' then 'CHANGED COMPANY B ' else '' end
         || pg_temp.normalise(v);
end $$;

-- Same statement with company B's real ids and with ids that exist nowhere.
create function pg_temp.same_either_way(p_identity text, p_sql_with_ids text, p_b_ids uuid[]) returns text
language plpgsql as $$
declare
  v_random text := p_sql_with_ids;
  v_real text := p_sql_with_ids;
  i integer;
  a text;
  b text;
begin
  for i in 1 .. coalesce(array_length(p_b_ids, 1), 0) loop
    v_real := replace(v_real, '$' || i, quote_literal(p_b_ids[i]));
    v_random := replace(v_random, '$' || i, quote_literal(gen_random_uuid()));
  end loop;
  a := pg_temp.outcome(p_identity, v_real);
  b := pg_temp.outcome(p_identity, v_random);
  return case when a = b then 'same: ' || a else format('DIFFERENT: with B''s ids [%s], with unknown ids [%s]', a, b) end;
end $$;

-- Unique keys ------------------------------------------------------------------------
select is(pg_temp.outcome('administrador', $$ insert into public.chatbots (company_id, name, system_prompt)
    values (tests.company_id('A'), 'Sales bot 2', 'p'), (tests.company_id('A'), 'Support bot B', 'p')
    returning 1 $$) || ' / ' ||
  pg_temp.outcome('administrador', $$ insert into public.integrations (company_id, id, type, name)
    values (tests.company_id('A'), tests.integration_id('B', 'with credentials'), 'telegram', 'Telegram bot') returning 1 $$),
  'ok: 1 / ok: 1',
  'a unique-key error does not reveal that another company''s row exists (names and ids are unique per company only)');
select is(
  pg_temp.outcome('administrador', $$ insert into public.chatbots (company_id, name, system_prompt)
    values (tests.company_id('B'), 'Support bot', 'p') on conflict do nothing returning 1 $$) || ' / ' ||
  pg_temp.outcome('administrador', $$ insert into public.chatbots (company_id, name, system_prompt)
    values (tests.company_id('B'), 'No such bot anywhere', 'p') on conflict do nothing returning 1 $$),
  '42501: new row violates row-level security policy for table "chatbots" / 42501: new row violates row-level security policy for table "chatbots"',
  'ON CONFLICT cannot be used to test another company''s unique keys');
select is(
  pg_temp.outcome('administrador', $$ insert into public.documents (company_id, title, mime_type, storage_path)
    values (tests.company_id('B'), 't', 'application/pdf', 'docs/account-fees.pdf') $$) || ' / ' ||
  pg_temp.outcome('administrador', $$ insert into public.documents (company_id, title, mime_type, storage_path)
    values (tests.company_id('B'), 't', 'application/pdf', 'docs/nothing-here.pdf') $$),
  '42501: new row violates row-level security policy for table "documents" / 42501: new row violates row-level security policy for table "documents"',
  'inserting into another company fails identically whether or not the unique key exists there');

-- Triggers that look rows up (finding H-1, fixed by 4000_hardening_tenant_insert_guard) -
select is(pg_temp.same_either_way('administrador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('B'), $1, 'probe', 'telegram') $$, array[tests.chatbot_id('B', 'assigned')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed in another company does not reveal that company''s chatbot or its channels');
select is(pg_temp.same_either_way('administrador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('B'), $1, 'probe', 'web') $$, array[tests.chatbot_id('B', 'spare')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed in another company does not reveal whether that company''s chatbot is active');
select is(pg_temp.same_either_way('supervisor', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel, assigned_operator_id)
    values (tests.company_id('B'), tests.chatbot_id('B', 'unassigned'), 'probe', 'web', $1) $$,
    array[tests.user_id('B', 'operador')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'a conversation proposed in another company does not reveal that company''s members or their assignments');
select is(pg_temp.same_either_way('supervisor', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
    values (tests.company_id('B'), $1, $2) $$,
    array[tests.chatbot_id('B', 'unassigned'), tests.user_id('B', 'supervisor')]),
  'same: 42501: new row violates row-level security policy for table "chatbot_operators"',
  'an assignment proposed in another company does not reveal that company''s members or their roles');
select is(pg_temp.same_either_way('no_company', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
    values (tests.company_id('B'), $1, 'operator', 'probe') $$, array[tests.conversation_id('B', 'assigned-closed')]),
  'same: 42501: new row violates row-level security policy for table "messages"',
  'an identity without a company cannot learn whether a conversation exists or is closed');
select is(pg_temp.same_either_way('no_company', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('B'), $1, 'probe', 'telegram') $$, array[tests.chatbot_id('B', 'assigned')]),
  'same: 42501: new row violates row-level security policy for table "conversations"',
  'an identity without a company cannot learn anything about a chatbot');

-- Foreign keys inside the caller's company -----------------------------------------
select is(pg_temp.same_either_way('administrador', $$ insert into public.messages (company_id, conversation_id, sender_type, content)
    values (tests.company_id('A'), $1, 'operator', 'probe') $$, array[tests.conversation_id('B', 'assigned-human')]),
  'same: 23503: conversation <id> does not exist in company <id>',
  'a message pointing at another company''s conversation fails exactly like one pointing at no conversation');
select is(pg_temp.same_either_way('administrador', $$ insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (tests.company_id('A'), $1, 'probe', 'web') $$, array[tests.chatbot_id('B', 'assigned')]),
  'same: 23503: insert or update on table "conversations" violates foreign key constraint "conversations_chatbot_fkey"',
  'a conversation pointing at another company''s chatbot fails exactly like one pointing at no chatbot');
select is(pg_temp.same_either_way('supervisor', $$ update public.conversations set assigned_operator_id = $1
    where id = tests.conversation_id('A', 'assigned-human') $$, array[tests.user_id('B', 'operador')]),
  'same: 23503: insert or update on table "conversations" violates foreign key constraint "conversations_assigned_operator_fkey"',
  'assigning a conversation to another company''s member fails exactly like assigning it to nobody known');
select is(pg_temp.same_either_way('supervisor', $$ insert into public.chatbot_operators (company_id, chatbot_id, user_id)
    values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), $1) $$,
    array[tests.user_id('B', 'supervisor')]),
  'same: 23503: insert or update on table "chatbot_operators" violates foreign key constraint "chatbot_operators_user_fkey"',
  'assigning another company''s member to a chatbot fails exactly like assigning an unknown user');
select is(pg_temp.same_either_way('administrador', $$ insert into public.message_reactions (company_id, message_id, reaction)
    values (tests.company_id('A'), $1, 'thumbs_up') $$, array[tests.message_id('B', 'assigned-human/bot')]),
  'same: 23502: null value in column "conversation_id" of relation "message_reactions" violates not-null constraint',
  'reacting to another company''s message fails exactly like reacting to no message');
select is(pg_temp.same_either_way('owner', $$ insert into public.document_chunks (company_id, document_id, chunk_index, content)
    values (tests.company_id('A'), $1, 0, 'probe') $$, array[tests.document_id('B', 'account fees')]),
  'same: 23503: insert or update on table "document_chunks" violates foreign key constraint "document_chunks_document_fkey"',
  'a chunk pointing at another company''s document fails exactly like one pointing at no document');

-- Planner statistics ---------------------------------------------------------------------
analyze public.chatbots, public.users, public.messages, public.documents, public.user_invitations, private.integration_credentials;
select tests.act_as('A', 'owner');
select is((select count(*)::int from pg_stats where schemaname in ('public', 'private')), 0,
  'planner statistics (pg_stats) show members no values of row-secured tables');
select tests.act_as_superuser();

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
                  else quote_literal('hardening probe') end
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
  a := pg_temp.outcome(p_identity, v_real);
  b := pg_temp.outcome(p_identity, v_guess);
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

select * from finish();
rollback;
