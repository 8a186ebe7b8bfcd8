-- How members delete rows without holding a table-level DELETE grant (issue 20, item 1).
--
-- LOCK TABLE checks table-level privileges only: table-level UPDATE, DELETE or TRUNCATE
-- lets a role take any lock, ACCESS EXCLUSIVE included, on a table every company shares;
-- INSERT allows up to ROW EXCLUSIVE, SELECT up to ACCESS SHARE, and column-level grants
-- allow nothing beyond those. So the request roles hold only SELECT, column-listed INSERT
-- and column-listed UPDATE (schema/_tables.toml), and PostgreSQL has no column-level
-- DELETE: members delete through public.delete_rows (POST /rpc/delete_rows for a
-- PostgREST-style client; docs/services.md, "Deleting rows").
--
-- The body, private.delete_rows (out of the exposed schema; public.delete_rows is the invoker
-- wrapper PostgREST exposes), runs as neurant_member_delete, a NOLOGIN role that is a member of
-- authenticated (inheriting its privileges) and holds table-level DELETE on the tables
-- whose registry entry grants it `delete`. It is subject to RLS (no BYPASSRLS) and every
-- policy `TO authenticated` applies to it (a policy applies to members of its roles), so
-- the delete policies, the read-only policies and the triggers decide exactly as they did
-- for a direct delete: one source for who may delete what. No request role can become it
-- (NOLOGIN; its only member is the applying role, which owns the tables anyway), and the
-- only statement run as it is the fixed delete below, which takes ROW EXCLUSIVE.
--
-- Roles are cluster-wide: created only when missing, never dropped by the rollback. On profile
-- citus it is LOGIN like the request roles (Citus connects to the workers as the current role),
-- without a password: give it none, and no pg_hba line lets it in (docs/scale-out.md).
-- The applying role must be a member of it to hand it the function (ALTER ... OWNER): a
-- superuser is; a CREATEROLE owner grants it to itself (PostgreSQL 16+: as the role's creator,
-- or after an admin's `grant neurant_member_delete to <owner>`; `neurant-db preflight` says so).
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'neurant_member_delete') then
    create role neurant_member_delete {{ 'login' if profile == 'citus' else 'nologin' }} inherit nobypassrls;
  end if;
  if not pg_catalog.pg_has_role(current_user, 'neurant_member_delete', 'MEMBER') then
    grant neurant_member_delete to current_user;
  end if;
end
$$;
comment on role neurant_member_delete is
  'neurant-db: owner of private.delete_rows(text, jsonb), the body of public.delete_rows; a member of authenticated holding table-level DELETE on the tables members delete from, so that no request role holds a privilege that lets it LOCK a shared table (docs/design.md, "Locks").';
do $$
begin
  if not pg_catalog.pg_has_role('neurant_member_delete', 'authenticated', 'MEMBER') then
    grant authenticated to neurant_member_delete;
  end if;
end
$$;

create function private.delete_rows(p_table text, p_keys jsonb) returns bigint
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp{{ citus_settings() }}
as $$
declare
  v_schema pg_catalog.name;
  v_name pg_catalog.name;
  v_match text;
  v_count bigint;
begin
  select n.nspname, c.relname,
         (select pg_catalog.string_agg(pg_catalog.format('t.%1$I operator(pg_catalog.=) k.%1$I', a.attname), ' and ')
            from pg_catalog.pg_constraint k
            join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum operator(pg_catalog.=) any (k.conkey)
           where k.conrelid = c.oid and k.contype = 'p' and a.attname <> 'company_id')
    into v_schema, v_name, v_match
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = pg_catalog.to_regclass(p_table)
     and n.nspname = 'public'
     and c.relkind = 'r'
     and pg_catalog.has_table_privilege('neurant_member_delete', c.oid, 'DELETE');
  if v_name is null or v_match is null then
    raise exception using errcode = '42501',
      message = pg_catalog.format('rows of %s cannot be deleted through delete_rows', p_table),
      hint = 'Name a table members delete from, schema-qualified: public.users, public.chatbots, public.chatbot_operators, public.conversations, public.messages, public.message_reactions, public.documents, public.document_chunks or public.integrations.';
  end if;
  if pg_catalog.jsonb_typeof(p_keys) is distinct from 'array' then
    raise exception using errcode = '22023',
      message = 'p_keys must be a JSON array of primary keys',
      hint = 'Pass one object per row with its key columns other than company_id: [{"id": "..."}], or [{"chatbot_id": "...", "user_id": "..."}] for public.chatbot_operators.';
  end if;
  -- A suspended or canceled company deletes nothing (NA002), like every other write of its
  -- members (the restrictive read-only policies apply here too; this names the rule first).
  perform private.require_company_writable();
  -- Keys are per tenant: the caller's company is the one they name rows of. RLS and the
  -- triggers then decide as for a direct delete by the caller (see the header).
  execute pg_catalog.format(
    'delete from %I.%I t using pg_catalog.jsonb_populate_recordset(null::%I.%I, $1) k'
    ' where t.company_id operator(pg_catalog.=) (select private.get_user_company_id()) and %s',
    v_schema, v_name, v_schema, v_name, v_match)
    using p_keys;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;
comment on function private.delete_rows(text, jsonb) is
  'The body of public.delete_rows(text, jsonb), run as neurant_member_delete (a member of authenticated subject to RLS, holding the table-level DELETE no request role holds): deletes the caller''s company''s rows with the given primary keys that the delete policies and triggers allow; returns how many. Kept out of the exposed schema.';
revoke execute on function private.delete_rows(text, jsonb) from public, anon;
grant execute on function private.delete_rows(text, jsonb) to authenticated;
-- The new owner needs CREATE on the schema for ALTER ... OWNER; it keeps none afterwards.
grant create on schema private to neurant_member_delete;
alter function private.delete_rows(text, jsonb) owner to neurant_member_delete;
revoke create on schema private from neurant_member_delete;

-- The API: PostgREST exposes public; the wrapper runs as the caller, who may execute the body.
create function public.delete_rows(p_table text, p_keys jsonb) returns bigint
  language sql volatile security invoker
  set search_path = pg_catalog, pg_temp
as $$
  select private.delete_rows(p_table, p_keys)
$$;
comment on function public.delete_rows(text, jsonb) is
  'Deletes rows of one table (schema-qualified name) of the caller''s company, named by their primary keys without company_id (a JSON array: [{"id": ...}], or [{"chatbot_id": ..., "user_id": ...}] for chatbot_operators), that the caller''s delete policies allow, and returns how many: the way members delete (no request role holds table-level DELETE, which would let it LOCK a shared table). The work is done by private.delete_rows as neurant_member_delete, a member of authenticated subject to RLS, so the policies TO authenticated and the triggers decide; a row the caller may not delete counts 0, like a direct delete. 42501 for a table members do not delete from, 22023 for keys that are not an array, NA002 while the company is read-only.';
revoke execute on function public.delete_rows(text, jsonb) from public, anon;
grant execute on function public.delete_rows(text, jsonb) to authenticated;
