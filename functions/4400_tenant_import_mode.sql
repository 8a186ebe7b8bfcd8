-- Why: domain lifecycle (tenant export and import, issue 24), object
-- private.tenant_import_mode() (new) and the bookkeeping trigger functions it guards:
-- supersedes private.audit_row_change() of schema/0050_audit_trail.sql,
-- private.users_count_members() and private.user_invitations_count_pending() of
-- schema/0140_tenancy_rules.sql, private.chatbots_count_quota() of schema/1020_chatbots.sql,
-- private.chatbot_visibility_follow() of functions/1300_chatbot_access_helpers.sql (profiles
-- vanilla and supabase), private.conversations_log_escalation() of
-- schema/1050_hitl_escalations.sql, private.messages_after_insert() of schema/1070_messages.sql,
-- private.message_reactions_after_insert() of schema/1080_message_reactions.sql,
-- private.documents_quota() and private.document_chunks_count() of schema/2000_knowledge.sql,
-- private.integrations_quota() and private.integration_credentials_sync() of
-- schema/2010_integrations.sql (create or replace of each whole function; one added first
-- statement, the rest unchanged); and private.conversations_guard_transition() as
-- schema/4205_conversations_erasable_end_user.sql defines it (an imported conversation keeps
-- its state, times and counters: the opening rules are for new conversations), and
-- private.integration_credentials_before_write() of schema/2010_integrations.sql (an imported
-- secret keeps its updated_at, which integrations.credentials_updated_at repeats).
--
-- `neurant-db tenant import` (runner/neurant_db/tenant_transfer.py) loads a tenant's snapshot
-- row for row, in one transaction, with every constraint, foreign key, tenant guard and
-- before-row rule of the target checked. What it must not do is run the bookkeeping again:
-- the snapshot already holds its result (the companies' counters, the monthly usage, the
-- conversations' activity, the escalations the keywords raised, the audit trail, the
-- chatbot visibility), so a message inserted again would count twice, fire its escalation
-- again, or be refused by the monthly limit (NA001) or a closed conversation. In import mode
-- these after-row/statement trigger functions return at once; nothing else changes. Import
-- mode is the transaction-local setting neurant.tenant_import (the company being imported),
-- honoured only for a session whose login role is a member of the schema's owner (the
-- runner's own session): any other session that sets it gets 42501 on its first write.

create function private.tenant_import_mode() returns boolean
  language plpgsql
  stable
  security invoker
  set search_path = pg_catalog, pg_temp
as $$
declare
  -- doctor: allow setting.read neurant.tenant_import import mode, honoured only for a session of the schema owner (any other session setting it is refused, 42501)
  v_company text := pg_catalog.current_setting('neurant.tenant_import', true);
begin
  if v_company is null or v_company = '' then
    return false;
  end if;
  if not pg_catalog.pg_has_role(session_user,
                                (select n.nspowner from pg_catalog.pg_namespace n where n.nspname = 'private'),
                                'MEMBER') then
    raise exception using errcode = '42501',
      message = pg_catalog.format('neurant.tenant_import is set by %s: only the schema owner''s session may import a tenant', session_user),
      hint = 'Run neurant-db tenant import as the database owner; never set neurant.tenant_import elsewhere.';
  end if;
  return true;
end
$$;
comment on function private.tenant_import_mode() is
  'True inside a tenant import (neurant-db tenant import): the transaction-local setting neurant.tenant_import names the company and the session''s login role is a member of the schema owner; the bookkeeping trigger functions then return at once (the snapshot brings their result). 42501 when another session sets it.';
revoke execute on function private.tenant_import_mode() from public, anon, authenticated;

-- supersedes the function of schema/0050_audit_trail.sql
create or replace function private.audit_row_change() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
-- Trigger arguments:
--   0: column holding the tenant id ('company_id', or 'id' for public.companies)
--   1: comma-separated primary key columns ('' = read from the catalog)
--   2: comma-separated columns whose change alone is not audited; a trailing
--      '*' matches a prefix (e.g. 'updated_at,current_*'); optional
declare
  v_company_col text := coalesce(tg_argv[0], 'company_id');
  v_pk_cols     text[] := string_to_array(nullif(tg_argv[1], ''), ',');
  v_ignored     text[] := string_to_array(coalesce(tg_argv[2], ''), ',');
  v_old         jsonb;
  v_new         jsonb;
  v_row         jsonb;
{%- if profile == 'citus' %}
  v_row_pk      jsonb;
{%- endif %}
  v_changed     text[];
  -- doctor: allow setting.read role the SET ROLE in effect (a session may only become roles it is a member of), recorded for attribution, decides nothing
  v_role        text := coalesce(nullif(current_setting('role', true), 'none'), session_user);
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if tg_op in ('UPDATE', 'DELETE') then
    v_old := to_jsonb(old);
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    v_new := to_jsonb(new);
  end if;
  v_row := coalesce(v_new, v_old);
  if v_pk_cols is null then
    select array_agg(a.attname::text order by k.ord) into v_pk_cols
      from pg_catalog.pg_index i
     cross join lateral unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indrelid = tg_relid and i.indisprimary;
  end if;

  if tg_op = 'UPDATE' then
    select coalesce(array_agg(n.key order by n.key), '{}') into v_changed
      from jsonb_each(v_new) n
     where n.value is distinct from v_old -> n.key
       and not exists (
             select 1 from unnest(v_ignored) p
              where p <> ''
                and (n.key = p or (right(p, 1) = '*' and starts_with(n.key, left(p, -1)))));
    if cardinality(v_changed) = 0 then
      return null;  -- bookkeeping-only change (counters, updated_at): not audited
    end if;
  end if;
{% if profile == 'citus' %}
  -- Citus refuses subqueries inside insert ... values: the key is computed first.
  v_row_pk := (select jsonb_object_agg(k, v_row -> k) from unnest(v_pk_cols) k);
{% endif %}
  insert into public.audit_logs (
    company_id, actor_user_id, actor_auth_uid, actor_role, action,
    table_schema, table_name, row_id, row_pk, old_data, new_data, changed_columns)
  values (
    (v_row ->> v_company_col)::uuid,
    private.get_current_user_id(),
    auth.uid(),
    v_role,
    lower(tg_op)::public.audit_action,
    tg_table_schema,
    tg_table_name,
    case when v_row ->> 'id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
         then (v_row ->> 'id')::uuid end,
    {{ 'v_row_pk' if profile == 'citus' else '(select jsonb_object_agg(k, v_row -> k) from unnest(v_pk_cols) k)' }},
    private.audit_redact(v_old),
    private.audit_redact(v_new),
    v_changed);
  return null;
end;
$$;

-- supersedes the function of schema/0140_tenancy_rules.sql
create or replace function private.users_count_members() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if tg_op = 'INSERT' then
    perform private.consume_quota(new.company_id, 'current_user_count', 1);
    return new;
  end if;
  perform private.consume_quota(old.company_id, 'current_user_count', -1);
  return old;
end
$$;

-- supersedes the function of schema/0140_tenancy_rules.sql
create or replace function private.user_invitations_count_pending() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_delta integer;
  v_company_id uuid;
  v_plan text;
  v_users bigint;
  v_pending bigint;
  v_max_users bigint;
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  v_delta := case when tg_op <> 'DELETE' and new.status = 'pending' then 1 else 0 end
       - case when tg_op <> 'INSERT' and old.status = 'pending' then 1 else 0 end;
  v_company_id := case when tg_op = 'DELETE' then old.company_id else new.company_id end;
  if v_delta = 0 then
    return null;
  end if;
  perform private.consume_quota(v_company_id, 'current_pending_invitation_count', v_delta);
  if v_delta > 0 then
    -- A pending invitation holds a seat: members + pending <= max_users.
{%- if profile == 'citus' %}
    -- Citus: the company, then its plan's limit (a statement of a delegated RPC may not join
    -- a distributed table with a reference table: docs/scale-out.md, "Definer RPCs").
    select c.subscription_plan, c.current_user_count, c.current_pending_invitation_count
      into v_plan, v_users, v_pending
      from public.companies c
     where c.id = v_company_id;
    select p.max_users into v_max_users from public.subscription_plans p where p.code = v_plan;
{%- else %}
    select c.subscription_plan, c.current_user_count, c.current_pending_invitation_count, p.max_users
      into v_plan, v_users, v_pending, v_max_users
      from public.companies c
      join public.subscription_plans p on p.code = c.subscription_plan
     where c.id = v_company_id;
{%- endif %}
    if v_max_users is not null and v_users + v_pending > v_max_users then
      raise exception using
        errcode = 'NA001',
        message = format('user limit reached for plan %s: %s of %s (%s members + %s pending invitations)',
                 v_plan, v_users + v_pending - 1, v_max_users, v_users, v_pending - 1),
        hint = 'Upgrade the plan, remove a user or revoke a pending invitation.';
    end if;
  end if;
  return null;
end
$$;

-- supersedes the function of schema/1020_chatbots.sql
create or replace function private.chatbots_count_quota()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if tg_op = 'INSERT' then
    perform private.consume_quota(new.company_id, 'current_chatbot_count', 1);
  elsif exists (select from public.companies c where c.id = old.company_id) then
    -- skipped when the whole company is being deleted (cascade): nothing left to count
    perform private.consume_quota(old.company_id, 'current_chatbot_count', -1);
  end if;
  return null;
end
$$;

-- supersedes the function of functions/1300_chatbot_access_helpers.sql
{% if profile != 'citus' %}
create or replace function private.chatbot_visibility_follow()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if tg_table_name = 'users' then
    -- a deleted member's row goes by its foreign key
    if tg_op <> 'DELETE' then
      perform private.refresh_chatbot_visibility(new.company_id, new.id);
    end if;
  elsif tg_table_name = 'chatbots' then
    perform private.refresh_chatbot_visibility(coalesce(new.company_id, old.company_id), null);
  else -- chatbot_operators
    if tg_op in ('DELETE', 'UPDATE') then
      perform private.refresh_chatbot_visibility(old.company_id, old.user_id);
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
      perform private.refresh_chatbot_visibility(new.company_id, new.user_id);
    end if;
  end if;
  return null;
end
$$;
{% endif %}

-- supersedes the function of schema/1050_hitl_escalations.sql
create or replace function private.conversations_log_escalation()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if new.is_hitl_active and (tg_op = 'INSERT' or not old.is_hitl_active)
     and not exists (select 1 from public.hitl_escalations e
                      where e.company_id = new.company_id and e.conversation_id = new.id
                        and e.created_at = new.hitl_escalated_at
                        and e.reason <> 'manual' and e.escalated_by is null) then
    insert into public.hitl_escalations (company_id, conversation_id, chatbot_id, reason, detail, escalated_by)
    values (new.company_id, new.id, new.chatbot_id, 'manual', '', private.get_current_user_id());
  end if;
  return null;
end
$$;

-- supersedes the function of schema/1070_messages.sql
create or replace function private.messages_after_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;{% if profile == 'citus' %}
  perform private.messages_bookkeeping(array[row(new.company_id, new.conversation_id, new.sender_type, new.sender_id,
                                                 new.content, new.created_at)::private.stored_message]);{% else %}
  perform private.messages_bookkeeping(array(
    select row(n.company_id, n.conversation_id, n.sender_type, n.sender_id, n.content, n.created_at)::private.stored_message
      from stored n));{% endif %}
  return null;
end
$$;

-- supersedes the function of schema/1080_message_reactions.sql
create or replace function private.message_reactions_after_insert()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_score smallint := case new.reaction when 'thumbs_down' then 1 when 'thumbs_up' then 5 else new.rating end;
  v_sender public.message_sender_type;
  v_bot record;
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if new.created_by is not null then
    return null; -- staff reviews never escalate
  end if;
  select m.sender_type into v_sender
    from public.messages m where m.company_id = new.company_id and m.id = new.message_id;
  if v_sender is distinct from 'bot' then
    return null;
  end if;
  select b.hitl_enabled, b.hitl_low_rating_threshold into v_bot
    from public.chatbots b where b.company_id = new.company_id and b.id = new.chatbot_id;
  if v_bot.hitl_enabled and v_bot.hitl_low_rating_threshold is not null and v_score <= v_bot.hitl_low_rating_threshold then
    perform private.escalate_conversation(new.company_id, new.conversation_id, 'low_rating',
                                          format('end user rated a bot answer %s/5 (%s; threshold %s)',
                                                 v_score, new.reaction, v_bot.hitl_low_rating_threshold));
  elsif v_score >= 4 then
    update public.conversations c
       set bot_turns_without_resolution = 0
     where c.company_id = new.company_id and c.id = new.conversation_id
       and c.status = 'active' and c.bot_turns_without_resolution <> 0;
  end if;
  return null;
end
$$;

-- supersedes the function of schema/2000_knowledge.sql
create or replace function private.documents_quota() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if tg_op = 'INSERT' then
    perform private.consume_quota(new.company_id, 'current_document_count', 1);
    perform private.consume_quota(new.company_id, 'current_storage_bytes', new.size_bytes);
    return new;
  elsif tg_op = 'UPDATE' then
    if new.size_bytes <> old.size_bytes then
      perform private.consume_quota(new.company_id, 'current_storage_bytes', new.size_bytes - old.size_bytes);
    end if;
    return new;
  else
    -- A cascade from a deleted company: the counters vanish with it.
    if exists (select 1 from public.companies c where c.id = old.company_id) then
      perform private.consume_quota(old.company_id, 'current_document_count', -1);
      perform private.consume_quota(old.company_id, 'current_storage_bytes', -old.size_bytes);
    end if;
    return old;
  end if;
end;
$$;

-- supersedes the function of schema/2000_knowledge.sql
create or replace function private.document_chunks_count() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;{% if profile == 'citus' %}
  -- Citus: a row trigger; a shard's statement trigger cannot hand its transition table to
  -- a distributed query (XX000 "could not find named tuplestore", issue 19). The update
  -- names the company: it runs on the co-located shard of this node.
  if tg_op = 'INSERT' then
    update public.documents d set chunk_count = d.chunk_count + 1
     where d.company_id = new.company_id and d.id = new.document_id;
  else
    update public.documents d set chunk_count = greatest(d.chunk_count - 1, 0)
     where d.company_id = old.company_id and d.id = old.document_id;
  end if;
  return null;
end;
$$;{% else %}
  if tg_op = 'INSERT' then
    update public.documents d
       set chunk_count = d.chunk_count + n.cnt
      from (select company_id, document_id, count(*)::integer as cnt
              from new_rows group by company_id, document_id) n
     where d.company_id = n.company_id and d.id = n.document_id;
  else
    update public.documents d
       set chunk_count = greatest(d.chunk_count - o.cnt, 0)
      from (select company_id, document_id, count(*)::integer as cnt
              from old_rows group by company_id, document_id) o
     where d.company_id = o.company_id and d.id = o.document_id;
  end if;
  return null;
end;
$$;{% endif %}

-- supersedes the function of schema/2010_integrations.sql
create or replace function private.integrations_quota() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if tg_op = 'INSERT' then
    perform private.consume_quota(new.company_id, 'current_integration_count', 1);
    return new;
  end if;
  if exists (select 1 from public.companies c where c.id = old.company_id) then
    perform private.consume_quota(old.company_id, 'current_integration_count', -1);
  end if;
  return old;
end;
$$;

-- supersedes the function of schema/2010_integrations.sql
create or replace function private.integration_credentials_sync() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if private.tenant_import_mode() then
    return null; -- a tenant import: the snapshot brings this bookkeeping's result (functions/4400)
  end if;
  if tg_op = 'DELETE' and not exists (select 1 from public.companies where id = old.company_id) then
    return old;  -- the company is being deleted: its integrations go with it
  end if;
  if tg_op = 'DELETE' then
    update public.integrations
       set has_credentials = false, credentials_updated_at = null
     where company_id = old.company_id and id = old.integration_id;
    return old;
  end if;
  update public.integrations
     set has_credentials = true, credentials_updated_at = new.updated_at
   where company_id = new.company_id and id = new.integration_id;
  return new;
end;
$$;

-- supersedes the function of schema/4205_conversations_erasable_end_user.sql
create or replace function private.conversations_guard_transition()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_chatbot record;
  v_user_id uuid;
  v_role public.user_role;
begin
  if tg_op = 'INSERT' and private.tenant_import_mode() then
    -- a tenant import (functions/4400): the row as its source stored it, state, times and
    -- counters included (the opening rules are for new conversations); the assignee is
    -- still checked against the chatbot's operators
    perform private.conversations_check_assignee(new.company_id, new.chatbot_id, new.assigned_operator_id);
    return new;
  end if;
  -- the caller's membership, only where a rule needs it (not for the per-message update
  -- of the message triggers; issue 11); no JWT subject (service_role, jobs): none to look up
  if tg_op = 'INSERT' or new.assigned_operator_id is distinct from old.assigned_operator_id then
    v_user_id := case when auth.uid() is not null then private.get_current_user_id() end;
    v_role := case when v_user_id is not null then private.get_user_role() end;
  end if;
  if tg_op = 'INSERT' then
    -- Only owner/administrador/supervisor open conversations (policy insert_as_supervisor):
    -- a member of another rank is refused first, with the RLS error, before the chatbot or
    -- the assignee is looked at (an operador would learn an unassigned chatbot's channels
    -- and state, or its assignments, from the checks below). Callers without a membership
    -- were refused by conversations_0_tenant_guard already.
    if v_role not in ('owner', 'administrador', 'supervisor') then
      raise exception using errcode = '42501',
        message = 'new row violates row-level security policy for table "conversations"',
        hint = 'Only owners, administradores and supervisors open conversations.';
    end if;
    select c.is_active, c.channels into v_chatbot
      from public.chatbots c where c.company_id = new.company_id and c.id = new.chatbot_id;
    if found then -- a missing chatbot is reported by the foreign key
      if not v_chatbot.is_active then
        raise exception using errcode = '22023',
          message = format('chatbot %s is inactive and accepts no new conversations', new.chatbot_id),
          hint = 'Activate the chatbot first.';
      end if;
      if not new.channel = any (v_chatbot.channels) then
        raise exception using errcode = '22023',
          message = format('channel %s is not enabled for chatbot %s (enabled: %s)', new.channel, new.chatbot_id, v_chatbot.channels),
          hint = 'Add the channel to chatbots.channels or use an enabled one.';
      end if;
    end if;
    if new.status in ('resolved', 'closed') then
      raise exception using errcode = '22023',
        message = format('a conversation cannot be created in status %s', new.status),
        hint = 'Create it active (or waiting_human/human) and change its status afterwards.';
    end if;
    new.closed_at := null;
    new.last_message_at := null;
    new.bot_turns_without_resolution := 0;
    new.hitl_escalated_at := case when new.status in ('waiting_human', 'human') then now() end;
    perform private.conversations_check_assignee(new.company_id, new.chatbot_id, new.assigned_operator_id);
    return new;
  end if;

  -- UPDATE
  -- end_user_id changes only to 'erased': the redaction of public.erase_end_user
  -- (functions/4210_erase_end_user.sql), which removes the identity and nothing else
  if new.company_id is distinct from old.company_id or new.chatbot_id is distinct from old.chatbot_id
     or (new.end_user_id is distinct from old.end_user_id and new.end_user_id <> 'erased')
     or new.channel is distinct from old.channel
     or new.created_at is distinct from old.created_at then
    raise exception using errcode = '22023',
      message = 'company_id, chatbot_id, end_user_id, channel and created_at of a conversation cannot change',
      hint = 'Start a new conversation instead (end_user_id changes only to ''erased'', by public.erase_end_user).';
  end if;

  if new.status is distinct from old.status then
    if not private.conversation_transition_allowed(old.status, new.status) then
      raise exception using errcode = '22023',
        message = format('invalid conversation status transition: %s -> %s', old.status, new.status),
        hint = case when old.status = 'closed'
                    then 'A closed conversation is final; a returning end user starts a new conversation.'
                    else 'Allowed: active->{waiting_human,human,resolved,closed}, waiting_human->{active,human,resolved,closed}, human->{active,waiting_human,resolved,closed}, resolved->{active,closed}.' end;
    end if;
    if new.status = 'closed' then
      new.closed_at := now();
    end if;
    if new.status in ('waiting_human', 'human') and old.status not in ('waiting_human', 'human') then
      -- private.escalate_conversation stamps the entry with the time of the escalation row it
      -- wrote (a time inside this transaction; members cannot write the column); every
      -- other entry, and any other time, is stamped now()
      if new.hitl_escalated_at is not distinct from old.hitl_escalated_at
         or not (new.hitl_escalated_at between now() and clock_timestamp()) then
        new.hitl_escalated_at := now();
      end if;
    end if;
    if new.status = 'waiting_human' and old.status = 'human' then
      new.assigned_operator_id := null; -- released back to the queue
    end if;
    if new.status in ('active', 'resolved', 'waiting_human', 'human') and old.status is distinct from new.status
       and not (new.status in ('waiting_human', 'human') and old.status in ('waiting_human', 'human')) then
      new.bot_turns_without_resolution := 0;
    end if;
  end if;

  if new.assigned_operator_id is distinct from old.assigned_operator_id then
    if v_role = 'operador' and new.assigned_operator_id is distinct from v_user_id and new.assigned_operator_id is not null then
      raise exception using errcode = '42501',
        message = 'an operador can only assign a conversation to itself',
        hint = 'Ask a supervisor to assign the conversation to someone else.';
    end if;
    perform private.conversations_check_assignee(new.company_id, new.chatbot_id, new.assigned_operator_id);
  end if;
  return new;
end
$$;

-- supersedes the function of schema/2010_integrations.sql
create or replace function private.integration_credentials_before_write() returns trigger
  language plpgsql
  volatile
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' and private.tenant_import_mode() then
    return new; -- a tenant import (functions/4400): updated_at as its source stored it
  end if;
  if tg_op = 'UPDATE' and new.integration_id is distinct from old.integration_id then
    raise exception using errcode = '22023',
      message = 'credentials cannot move to another integration',
      hint = 'Set the credentials of the other integration instead.';
  end if;
  new.updated_at := now();
  return new;
end;
$$;
