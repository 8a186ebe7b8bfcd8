-- Existence and privileges of the chatbot and conversation domains: RLS forced,
-- self-documenting catalog, policy shape, column grants, tenant-consistent keys.
begin;
select plan(16);

create temp table my_tables on commit drop as
select unnest(array['public.chatbot_templates', 'public.chatbots', 'public.chatbot_operators', 'public.conversations',
                    'public.hitl_escalations', 'public.company_message_usage', 'public.messages',
                    'public.message_reactions']::regclass[]) as oid;

select is(array(select c.relname::text from pg_class c join my_tables t on t.oid = c.oid
                 where not (c.relrowsecurity and c.relforcerowsecurity) order by 1),
    '{}'::text[], 'every chatbot/conversation table has row level security enabled and forced');

select is(array(select format('%s.%s', c.relname, a.attname) from pg_class c join my_tables t on t.oid = c.oid
                  join pg_attribute a on a.attrelid = c.oid
                 where a.attnum > 0 and not a.attisdropped
                   and (col_description(c.oid, a.attnum) is null or obj_description(c.oid, 'pg_class') is null) order by 1),
    '{}'::text[], 'every chatbot/conversation table and column has a comment');

select is(
    array(select f from unnest(array['normalize_phrase', 'normalize_phrases', 'match_phrase', 'phrase_list_is_valid', 'channel_list_is_valid',
                                     'chatbots_before_write', 'chatbots_count_quota', 'chatbot_operators_before_write',
                                     'get_assigned_chatbot_ids', 'conversations_check_assignee', 'conversation_transition_allowed',
                                     'conversations_guard_transition', 'escalate_conversation', 'conversations_log_escalation',
                                     'record_message_usage', 'messages_before_insert', 'messages_bookkeeping', 'messages_after_insert',
                                     'messages_refuse_conversation',
                                     'message_reactions_before_insert', 'message_reactions_after_insert',
                                     'create_chatbot_from_template', 'get_visible_chatbot_ids']) f
           where not exists (select 1 from pg_proc p
                              where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
                                and p.proname = f and obj_description(p.oid, 'pg_proc') is not null)
           order by 1),
    '{}'::text[], 'every chatbot/conversation function exists and has a comment');

select is(array(select format('%s on %s', pol.polname, pol.polrelid::regclass) from pg_policy pol join my_tables t on t.oid = pol.polrelid
                 where obj_description(pol.oid, 'pg_policy') is null order by 1),
    '{}'::text[], 'every chatbot/conversation policy has a comment');

select is(array(select t.typname::text from pg_type t
                 where t.oid in ('public.channel_type'::regtype, 'public.conversation_status'::regtype,
                                 'public.message_sender_type'::regtype, 'public.reaction_type'::regtype,
                                 'public.hitl_escalation_reason'::regtype)
                   and obj_description(t.oid, 'pg_type') is null),
    '{}'::text[], 'every chatbot/conversation enum has a comment');

select is(array(select format('%s on %s', pol.polname, pol.polrelid::regclass) from pg_policy pol join my_tables t on t.oid = pol.polrelid
                 where pol.polroles <> array['authenticated'::regrole::oid] order by 1),
    '{}'::text[], 'every chatbot/conversation policy applies TO authenticated only');

select is(array(select format('%s on %s', pol.polname, pol.polrelid::regclass) from pg_policy pol join my_tables t on t.oid = pol.polrelid
                 where coalesce(pg_get_expr(pol.polqual, pol.polrelid), '') || ' ' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '')
                       ~ '(?<!SELECT )(?<!SELECT private\.)(get_current_user_id|get_user_company_id|get_user_role|get_assigned_chatbot_ids)\('
                 order by 1),
    '{}'::text[], 'policies call the context helpers only wrapped in (select ...), once per statement');

select is(array(select format('%s on %s', pol.polname, pol.polrelid::regclass) from pg_policy pol join my_tables t on t.oid = pol.polrelid
                 where coalesce(pg_get_expr(pol.polqual, pol.polrelid), '') || ' ' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '')
                       ~ '(chatbot_operators|public\.users|public\.conversations|public\.messages)'
                 order by 1),
    '{}'::text[], 'no chatbot/conversation policy queries another table per row');

select is(array(select c.relname::text from pg_class c join my_tables t on t.oid = c.oid
                 where has_table_privilege('anon', c.oid, 'select, insert, update, delete') order by 1),
    '{}'::text[], 'anon has no privilege on any chatbot/conversation table');

select is(array(select c.relname::text from pg_class c join my_tables t on t.oid = c.oid
                 where not has_table_privilege('service_role', c.oid, 'select, insert, update, delete') order by 1),
    '{}'::text[], 'service_role has every privilege on every chatbot/conversation table');

select is(array(select format('%s.%s', c.relname, a.attname) from pg_class c join my_tables t on t.oid = c.oid
                  join pg_attribute a on a.attrelid = c.oid
                 where a.attnum > 0 and not a.attisdropped
                   and (has_column_privilege('authenticated', c.oid, a.attnum, 'insert')
                        or has_column_privilege('authenticated', c.oid, a.attnum, 'update'))
                   and c.relname in ('hitl_escalations', 'company_message_usage', 'chatbot_templates') order by 1),
    '{}'::text[], 'users cannot write templates, HITL escalations or message usage (database/backend only)');

select is(array(select a.attname::text from pg_attribute a
                 where a.attrelid = 'public.messages'::regclass and a.attnum > 0
                   and has_column_privilege('authenticated', a.attrelid, a.attnum, 'update') order by 1),
    '{}'::text[], 'messages are append-only for users (no column is updatable)');

select is(array(select a.attname::text from pg_attribute a
                 where a.attrelid = 'public.conversations'::regclass and a.attnum > 0
                   and has_column_privilege('authenticated', a.attrelid, a.attnum, 'update') order by 1),
    array['assigned_operator_id', 'status'], 'users may change only the status and the assignee of a conversation');

select is(array(select con.conname::text from pg_constraint con join my_tables t on t.oid = con.conrelid
                 where con.contype = 'f'
                   and not exists (select from pg_attribute a where a.attrelid = con.conrelid and a.attnum = any (con.conkey)
                                      and a.attname = 'company_id') order by 1),
    array['chatbots_template_fkey'], 'every foreign key of a tenant table includes company_id (except to the global template table)');

select is(array(select con.conname::text from pg_constraint con join my_tables t on t.oid = con.conrelid
                 where con.contype = 'f'
                   and not exists (select from pg_index i where i.indrelid = con.conrelid
                                      and (i.indkey::int2[])[0:cardinality(con.conkey) - 1] @> con.conkey
                                      and (i.indkey::int2[])[0:cardinality(con.conkey) - 1] <@ con.conkey)
                   -- served by the time-series index (exactly on profile citus, where it holds chatbot_id too)
                   and not (con.conname = 'messages_conversation_fkey'
                            and pg_get_indexdef('public.messages_conversation_time_idx'::regclass)
                                like '%(company_id, conversation_id, %') order by 1),
    '{}'::text[],
    'every foreign key has an index leading with its columns (messages -> conversations is served by the time-series index)');

select ok(not has_function_privilege('authenticated', 'private.record_message_usage(uuid, bigint, bigint)', 'execute')
          and not has_function_privilege('authenticated', 'private.escalate_conversation(uuid, uuid, public.hitl_escalation_reason, text)', 'execute')
          and not has_function_privilege('authenticated', 'private.messages_bookkeeping(private.stored_message[])', 'execute'),
    'users cannot bump message usage or escalate conversations by calling the internal functions');

select * from finish();
rollback;
