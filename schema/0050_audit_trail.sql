-- Why: the audit trail (architecture section 6, docs/design.md "audit of security and
-- configuration changes, credentials redacted"). public.audit_logs is
-- append-only for every role, service_role included; rows are written by the
-- generic row trigger private.audit_row_change() in the same transaction as
-- the audited change (attached by each audited table's own file).

{% from 'schema/_tenant_guard.sql' import doctor_notes -%}
create type public.audit_action as enum ('insert', 'update', 'delete', 'custom');
comment on type public.audit_action is
  'What an audit row records: a row insert/update/delete captured by trigger, or a custom event written by service_role (login, export, ownership transfer, ...).';

create table public.audit_logs (
  company_id      uuid not null,
  id              uuid not null default gen_random_uuid(),
  actor_user_id   uuid,
  actor_auth_uid  uuid,
  actor_role      text not null,
  action          public.audit_action not null,
  event_name      text,
  table_schema    text,
  table_name      text,
  row_id          uuid,
  row_pk          jsonb,
  old_data        jsonb,
  new_data        jsonb,
  changed_columns text[],
  transaction_id  bigint not null default txid_current(),
  created_at      timestamptz not null default now(),
  constraint audit_logs_pkey primary key (company_id, id),
  constraint audit_logs_actor_role_length_check check (char_length(actor_role) between 1 and 63),
  constraint audit_logs_event_name_check check (
    (action = 'custom') = (event_name is not null)
    and (event_name is null or event_name ~ '^[a-z][a-z0-9_.]{0,99}$')),
  constraint audit_logs_row_change_shape_check check (
    action = 'custom'
    or (table_schema is not null and table_name is not null and row_pk is not null
        and (action <> 'insert' or (old_data is null and new_data is not null))
        and (action <> 'update' or (old_data is not null and new_data is not null))
        and (action <> 'delete' or (old_data is not null and new_data is null)))),
  constraint audit_logs_json_object_check check (
    (row_pk is null or jsonb_typeof(row_pk) = 'object')
    and (old_data is null or jsonb_typeof(old_data) = 'object')
    and (new_data is null or jsonb_typeof(new_data) = 'object'))
);

comment on table public.audit_logs is
  'Append-only audit trail of security and configuration changes, one row per changed row (or custom event). Secrets, credentials and token hashes are redacted. No FK to companies on purpose: the trail outlives the tenant rows it describes and must never be cascade-deleted. Readable by owner/administrador of the company.'{{ doctor_notes('public.audit_logs') }};
comment on column public.audit_logs.company_id is 'Tenant the audited row belongs to.';
comment on column public.audit_logs.id is 'Audit row id.';
comment on column public.audit_logs.actor_user_id is 'public.users.id of the acting member (null for service_role, jobs and migrations).';
comment on column public.audit_logs.actor_auth_uid is 'auth.uid() of the caller (JWT sub), if any.';
comment on column public.audit_logs.actor_role is 'Database role that made the change (authenticated, service_role, or the session role when no SET ROLE was active).';
comment on column public.audit_logs.action is 'insert / update / delete / custom (public.audit_action).';
comment on column public.audit_logs.event_name is 'Name of a custom event (lowercase dotted); present if and only if action = custom.';
comment on column public.audit_logs.table_schema is 'Schema of the audited table.';
comment on column public.audit_logs.table_name is 'Name of the audited table.';
comment on column public.audit_logs.row_id is 'The audited row''s id column when it has one.';
comment on column public.audit_logs.row_pk is 'Primary key of the audited row as a JSON object.';
comment on column public.audit_logs.old_data is 'Row before the change (update/delete), secrets redacted.';
comment on column public.audit_logs.new_data is 'Row after the change (insert/update), secrets redacted.';
comment on column public.audit_logs.changed_columns is 'Columns whose value changed (update only).';
comment on column public.audit_logs.transaction_id is 'Id of the transaction that made the change (groups the rows of one operation).';
comment on column public.audit_logs.created_at is 'Transaction start time of the change.';

-- ---------------------------------------------------------------------------
-- Append-only enforcement
-- ---------------------------------------------------------------------------

{% if profile == 'citus' -%}
create function private.transaction_token() returns text
  language plpgsql
  stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_token text;
begin
  -- Citus: the distributed transaction's id, which the coordinator and every worker it
  -- writes through share (a worker's own transaction id is not the coordinator's); its
  -- start as an epoch, free of the session's time zone. Read by EXECUTE: the profile also
  -- runs without the citus extension, where the transaction's own id serves.
  if pg_catalog.to_regprocedure('pg_catalog.get_current_transaction_id()') is null then
    return pg_catalog.pg_current_xact_id()::text;
  end if;
  -- null before the transaction's first distributed statement (number 0, no start)
  execute 'select t.initiator_node_identifier || '':'' || t.transaction_number || '':'' '
          '|| pg_catalog.date_part(''epoch'', t.transaction_stamp) from pg_catalog.get_current_transaction_id() t '
          'where t.transaction_number <> 0'
    into v_token;
  return v_token;
end;
$$;
comment on function private.transaction_token() is
  'Names the current transaction, the same on every node it runs on: Citus''s distributed transaction id (initiator:number:start epoch; null before the transaction''s first distributed statement), else pg_current_xact_id(). The audit purge''s token (private.purge_audit_logs, private.audit_logs_append_only).';
revoke execute on function private.transaction_token() from public, anon, authenticated;
grant execute on function private.transaction_token() to service_role;

{% endif -%}
create function private.audit_logs_append_only() returns trigger
  language plpgsql
  volatile
  set search_path = pg_catalog, pg_temp
as $$
begin
  -- Retention purge hook (data lifecycle, 7 years). The gate is ownership: only a member
  -- of the table's owner (the migration/job role that owns private.purge_audit_logs;
  -- never service_role or authenticated, who cannot become it) may delete. The setting
  -- is only that owner's guard against deleting by accident: private.purge_audit_logs
  -- sets it to the id of its own transaction, so a value set by anyone else, or planted
  -- earlier in a pooled session, never matches.
  -- doctor: allow setting.read neurant.audit_purge decides nothing alone: the delete also needs membership of the table owner
  if tg_op = 'DELETE'
     and pg_catalog.pg_has_role(
           current_user,
           (select c.relowner from pg_catalog.pg_class c where c.oid = tg_relid),
           'MEMBER')
     and coalesce(current_setting('neurant.audit_purge', true), '') = {{ transaction_token() }} then
    return old;
  end if;
  raise exception using errcode = '42501',
    message = format('audit logs are append-only: %s is not allowed', lower(tg_op)),
    hint = 'Audit rows can only be inserted; write a new row to record a correction.';
end;
$$;
comment on function private.audit_logs_append_only() is
  'Trigger: rejects UPDATE, DELETE and TRUNCATE on public.audit_logs for every role (retention purge excepted: a member of the table owner, in the transaction private.purge_audit_logs marked by setting neurant.audit_purge to its id).';

create trigger audit_logs_append_only
  before update or delete on public.audit_logs
  for each row execute function private.audit_logs_append_only();
create trigger audit_logs_no_truncate
  before truncate on public.audit_logs
  for each statement execute function private.audit_logs_append_only();
comment on trigger audit_logs_append_only on public.audit_logs is 'Audit rows cannot be updated or deleted.';
comment on trigger audit_logs_no_truncate on public.audit_logs is 'Audit logs cannot be truncated.';

-- ---------------------------------------------------------------------------
-- Redaction and the generic row trigger
-- ---------------------------------------------------------------------------

create function private.jsonb_has_secret_keys(p_value jsonb) returns boolean
  language sql
  immutable
  strict
  parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.jsonb_path_exists(
    p_value,
    'strict $.** ? (@.type() == "object").keyvalue() ? (@.key like_regex "(token|secret|passw|pwd|passphrase|api[_-]?key|apikey|private[_-]?key|access[_-]?key|signing[_-]?key|encryption[_-]?key|master[_-]?key|auth[_-]?key|credential|authorization|bearer|cookie|session[_-]?id|connection[_-]?string)" flag "i")'
  );
$$;
comment on function private.jsonb_has_secret_keys(jsonb) is
  'True if any object key at any depth looks like a secret (token, secret, password, passphrase, api_key, private_key, encryption_key, credential, authorization, connection_string, ...). Used to keep secrets out of integrations.config.';

-- The check constraint on integrations.config runs with the inserting role's privileges:
-- it must be able to execute it.
revoke execute on function private.jsonb_has_secret_keys(jsonb) from public, anon;
grant execute on function private.jsonb_has_secret_keys(jsonb) to authenticated, service_role;

-- Secrets by value: the key a secret sits under proves nothing ("note", "x"), so a
-- string is also judged by its shape. Whole-string shapes (long high-entropy runs)
-- need a letter/digit mix so that ordinary words, ids, UUIDs, phone numbers and
-- colours pass; the token shapes match anywhere in the string. The families follow the
-- rule families of the maintained secret scanners (gitleaks, detect-secrets: vendor token
-- prefixes, webhook URLs, credentials in URLs and connection strings, keyword-anchored
-- keys, high entropy), written here; tests/pgtap/2000 holds one sample per family. A new
-- vendor format is a new line here and a new sample there.
create function private.text_looks_like_secret(p_value text) returns boolean
  language sql
  immutable
  strict
  parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select
    -- JWT / JWS: base64url header starting {"..., payload, signature
    p_value ~ 'eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*'
    -- vendor key prefixes: Stripe, OpenAI, Slack, GitHub, AWS access key ids
    or p_value ~ '(^|[^A-Za-z0-9])(sk|rk|pk)_live_[A-Za-z0-9]{8,}'
    or p_value ~ '(^|[^A-Za-z0-9])(sk|rk)_test_[A-Za-z0-9]{8,}'
    or p_value ~ '(^|[^A-Za-z0-9])whsec_[A-Za-z0-9]{16,}'
    or p_value ~ '(^|[^A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}'
    or p_value ~ '(^|[^A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}'
    or p_value ~ '(^|[^A-Za-z0-9])(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})'
    or p_value ~ '(^|[^A-Za-z0-9])(AKIA|ASIA)[0-9A-Z]{16}([^A-Za-z0-9]|$)'
    -- more vendor keys: SendGrid, Google API, Mailgun, GitLab, npm, PyPI, Shopify,
    -- DigitalOcean, Hugging Face, Twilio API keys
    or p_value ~ '(^|[^A-Za-z0-9])SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{30,64}'
    or p_value ~ '(^|[^A-Za-z0-9])AIza[0-9A-Za-z_-]{35}'
    or p_value ~ '(^|[^A-Za-z0-9])key-[0-9a-zA-Z]{32}'
    or p_value ~ '(^|[^A-Za-z0-9])glpat-[A-Za-z0-9_-]{20,}'
    or p_value ~ '(^|[^A-Za-z0-9])npm_[A-Za-z0-9]{36}'
    or p_value ~ '(^|[^A-Za-z0-9])pypi-[A-Za-z0-9_-]{50,}'
    or p_value ~ '(^|[^A-Za-z0-9])shp(at|ca|pa|ss)_[a-fA-F0-9]{32}'
    or p_value ~ '(^|[^A-Za-z0-9])dop_v1_[a-f0-9]{64}'
    or p_value ~ '(^|[^A-Za-z0-9])hf_[A-Za-z0-9]{30,}'
    or p_value ~ '(^|[^A-Za-z0-9])SK[0-9a-fA-F]{32}([^A-Za-z0-9]|$)'
    -- Telegram bot tokens: <bot id>:<35 characters>
    or p_value ~ '(^|[^0-9])[0-9]{8,10}:[A-Za-z0-9_-]{35}([^A-Za-z0-9_-]|$)'
    -- webhook URLs whose path is the secret: Slack, Discord, Microsoft Teams
    or p_value ~* 'hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9_/-]{8,}'
    or p_value ~* 'discord(app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]{20,}'
    or p_value ~* '\.webhook\.office\.com/webhookb2/'
    -- credentials in a query string or a connection string (URL ?access_token=, JDBC
    -- ?password=, ADO.NET Password=...;, libpq password=..., Azure AccountKey=/sig=)
    or p_value ~* '(^|[?&;[:space:]])(access_token|id_token|refresh_token|auth_token|token|api_?key|client_secret|secret|password|passwd|pwd|sig|x-amz-signature|accountkey|sharedaccesskey)=[^&;#[:space:]]{4,}'
    -- AWS secret access keys: 40 base64 characters mixing cases and digits, alone or
    -- after an aws ... secret keyword
    or (p_value ~ '^[A-Za-z0-9/+]{40}$' and p_value ~ '[0-9]' and p_value ~ '[a-z]' and p_value ~ '[A-Z]')
    or p_value ~* 'aws.{0,20}secret.{0,20}[A-Za-z0-9/+]{40}'
    -- PEM private keys of any kind
    or p_value ~ '-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----'
    -- an HTTP Authorization value
    or p_value ~* '^\s*(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}\s*$'
    -- credentials in a URL: scheme://user[:password]@host
    or p_value ~* '^[a-z][a-z0-9+.-]*://[^/?#@\s]+@'
    -- long high-entropy strings without spaces (>= 32): hex, base64url, or standard
    -- base64 (with its + or = padding, so that slash-separated paths pass)
    or (p_value ~ '^[0-9A-Fa-f]{32,}$' and p_value ~ '[0-9]' and p_value ~ '[A-Fa-f]')
    or ((p_value ~ '^[A-Za-z0-9_-]{32,}$' or (p_value ~ '^[A-Za-z0-9+/]{32,}={0,2}$' and p_value ~ '[+=]'))
        and p_value ~ '[0-9]' and p_value ~ '[a-z]' and p_value ~ '[A-Z]')
$$;
comment on function private.text_looks_like_secret(text) is
  'True if a string has the shape of a secret: a JWT, a vendor key (sk_live_, sk-, xox[abposr]-, ghp_, AKIA..., SendGrid SG., AIza, glpat-, npm_, Telegram bot tokens, ...), a webhook URL whose path is the secret (Slack, Discord, Teams), a credential in a query or connection string (?access_token=, password=, AccountKey=), an AWS secret access key, a PEM private key, an Authorization value (Bearer/Basic/Token ...), a URL with userinfo (scheme://user:pass@), or a hex/base64 run of 32+ characters without spaces mixing letters and digits. Ordinary text, URLs without credentials, phone numbers, channel ids, UUIDs and colours pass.';

create function private.jsonb_has_secret_values(p_value jsonb) returns boolean
  language sql
  immutable
  strict
  parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select exists (
    select 1
      from pg_catalog.jsonb_path_query(p_value, 'strict $.** ? (@.type() == "string")') s(v)
     where private.text_looks_like_secret(s.v #>> '{}')
  );
$$;
comment on function private.jsonb_has_secret_values(jsonb) is
  'True if any string value at any depth (objects and arrays, under any key) looks like a secret (private.text_looks_like_secret). Used with jsonb_has_secret_keys to keep secrets out of integrations.config and out of the audit trail.';

revoke execute on function private.text_looks_like_secret(text), private.jsonb_has_secret_values(jsonb) from public, anon;
grant execute on function private.text_looks_like_secret(text), private.jsonb_has_secret_values(jsonb)
  to authenticated, service_role;

create function private.audit_redact(p_row jsonb) returns jsonb
  language sql
  immutable
  parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select case when p_row is null then null else coalesce(
    (select pg_catalog.jsonb_object_agg(
              e.key,
              case
                when e.value = 'null'::jsonb then e.value
                when e.key ~* '^(token_hash|ciphertext|nonce|encrypted_.*|.*password.*|.*passwd.*|.*passphrase.*|.*secret.*|.*api_?key.*|.*private_?key.*|.*encryption_?key.*|.*signing_?key.*|.*access_?key.*|.*master_?key.*|.*access_?token.*|.*refresh_?token.*|.*_token|token)$'
                  then to_jsonb('[REDACTED]'::text)
                when pg_catalog.jsonb_typeof(e.value) = 'object' and private.jsonb_has_secret_keys(e.value)
                  then to_jsonb('[REDACTED]'::text)
                when pg_catalog.jsonb_typeof(e.value) in ('string', 'object', 'array')
                     and private.jsonb_has_secret_values(e.value)
                  then to_jsonb('[REDACTED]'::text)
                else e.value
              end)
       from pg_catalog.jsonb_each(p_row) e),
    '{}'::jsonb) end;
$$;
comment on function private.audit_redact(jsonb) is
  'Replaces with "[REDACTED]" the value of secret-looking columns (token_hash, ciphertext, nonce, *password*, *passphrase*, *secret*, *api_key*, *encryption_key*, *_token, ...), of JSON objects containing secret-looking keys, and of any value (text, object, array) holding a string shaped like a secret (private.jsonb_has_secret_values), whatever its column is called.';

create function private.audit_row_change() returns trigger
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
comment on function private.audit_row_change() is
  'Generic AFTER ROW trigger: appends one redacted row to public.audit_logs in the same transaction (args: tenant column, pk columns, ignored columns). Updates touching only ignored columns are skipped.';

revoke execute on function private.audit_logs_append_only() from public, anon, authenticated;
revoke execute on function private.audit_redact(jsonb) from public, anon, authenticated;
revoke execute on function private.audit_row_change() from public, anon, authenticated;
