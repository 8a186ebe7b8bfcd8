-- Why: credentials are write-only for company members. Owner/administrador
-- store an already-encrypted envelope through these RPCs (security definer:
-- members have no privilege on private.integration_credentials at all);
-- nothing returns the envelope to anon/authenticated. The bot engine
-- (service_role) reads private.integration_credentials and decrypts with the
-- application-held KMS key named by key_id.

{% from 'functions/_rpc.sql' import exposed_rpc, delegated_rpc, delegated_note -%}
create function {{ 'private' if profile == 'citus' else 'public' }}.set_integration_credentials(
{%- if profile == 'citus' %}
  p_company_id uuid,
{%- endif %}
  p_integration_id uuid,
  p_ciphertext bytea,
  p_key_id text
)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_company_id uuid := private.get_user_company_id();
  v_role public.user_role := private.get_user_role();
  v_updated_at timestamptz;
begin
  if v_company_id is null {{- ' or v_company_id <> p_company_id' if profile == 'citus' }} or v_role is null or v_role not in ('owner', 'administrador') then
    raise exception using errcode = '42501',
      message = 'only an owner or administrador can set integration credentials',
      hint = 'Ask an owner or administrador of the company.';
  end if;
  perform private.require_company_writable(v_company_id);
  if not exists (select 1 from public.integrations i
                  where i.company_id = v_company_id and i.id = p_integration_id) then
    raise exception using errcode = '42501',
      message = format('integration %s does not exist in your company', p_integration_id),
      hint = 'Pass the id of one of your company''s integrations.';
  end if;
  if p_ciphertext is null or octet_length(p_ciphertext) not between 30 and 65536
     or get_byte(p_ciphertext, 0) <> 1 then
    raise exception using errcode = '22023',
      message = 'credentials must be an encrypted envelope v1 (0x01 || 12-byte nonce || ciphertext || 16-byte tag, 30 bytes to 64 kB)',
      hint = 'Encrypt the credentials with the KMS data key in the application before sending them; never send plaintext.';
  end if;

  insert into private.integration_credentials as c (company_id, integration_id, ciphertext, key_id, updated_by)
  values (v_company_id, p_integration_id, p_ciphertext, p_key_id, private.get_current_user_id())
  on conflict (company_id, integration_id) do update
     set ciphertext = excluded.ciphertext,
         key_id = excluded.key_id,
         updated_by = excluded.updated_by
  returning c.updated_at into v_updated_at;
  return v_updated_at;
end;
$$;
{%- if profile == 'citus' %}
comment on function private.set_integration_credentials(uuid, uuid, bytea, text) is
  'Profile citus: the body of public.set_integration_credentials for the caller''s company p_company_id (refused when it is not the caller''s), distributed by p_company_id with force_delegation (seeds/3990): run on the worker holding the company, over the caller''s connection.';
{{ delegated_rpc('set_integration_credentials', 'p_integration_id uuid, p_ciphertext bytea, p_key_id text', [('p_integration_id', 'uuid'), ('p_ciphertext', 'bytea'), ('p_key_id', 'text')], 'timestamptz', 'scalar') }}
{%- endif %}
comment on function public.set_integration_credentials(uuid, bytea, text) is
  'Stores (or replaces) the encrypted credentials envelope of one of the caller''s integrations; owner/administrador only (42501 otherwise; NA002 while the company is suspended or canceled). Write-only: returns the new credentials_updated_at, never the secret.'{{ exposed_rpc() if profile != 'citus' else delegated_note('set_integration_credentials') }};

create function {{ 'private.clear_integration_credentials(p_company_id uuid, ' if profile == 'citus' else 'public.clear_integration_credentials(' }}p_integration_id uuid)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_company_id uuid := private.get_user_company_id();
  v_role public.user_role := private.get_user_role();
begin
  if v_company_id is null {{- ' or v_company_id <> p_company_id' if profile == 'citus' }} or v_role is null or v_role not in ('owner', 'administrador') then
    raise exception using errcode = '42501',
      message = 'only an owner or administrador can clear integration credentials',
      hint = 'Ask an owner or administrador of the company.';
  end if;
  perform private.require_company_writable(v_company_id);
  delete from private.integration_credentials c
   where c.company_id = v_company_id and c.integration_id = p_integration_id;
  return found;
end;
$$;
{%- if profile == 'citus' %}
comment on function private.clear_integration_credentials(uuid, uuid) is
  'Profile citus: the body of public.clear_integration_credentials for the caller''s company p_company_id (refused when it is not the caller''s), distributed by p_company_id with force_delegation (seeds/3990): run on the worker holding the company, over the caller''s connection.';
{{ delegated_rpc('clear_integration_credentials', 'p_integration_id uuid', [('p_integration_id', 'uuid')], 'boolean', 'scalar') }}
{%- endif %}
comment on function public.clear_integration_credentials(uuid) is
  'Deletes the stored credentials of one of the caller''s integrations (owner/administrador only; NA002 while the company is suspended or canceled); true if there were any.'{{ exposed_rpc() if profile != 'citus' else delegated_note('clear_integration_credentials') }};

revoke execute on function public.set_integration_credentials(uuid, bytea, text) from public, anon;
grant execute on function public.set_integration_credentials(uuid, bytea, text) to authenticated;
revoke execute on function public.clear_integration_credentials(uuid) from public, anon;
grant execute on function public.clear_integration_credentials(uuid) to authenticated;
{%- if profile == 'citus' %}
revoke execute on function private.set_integration_credentials(uuid, uuid, bytea, text), private.clear_integration_credentials(uuid, uuid) from public, anon;
grant execute on function private.set_integration_credentials(uuid, uuid, bytea, text), private.clear_integration_credentials(uuid, uuid) to authenticated;
{%- endif %}
