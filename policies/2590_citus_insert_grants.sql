-- neurant: profile citus
-- Profile citus only (the other profiles do not list this migration): insert grants that
-- work on the shards (docs/scale-out.md, "Grants").
--
-- A Citus coordinator fills in every defaulted column an INSERT omits and sends the full
-- column list to the shard, where the column privileges are checked again: a column-listed
-- insert grant that leaves out a defaulted column (id, created_at, status, ...) fails there
-- for every member insert. So on this profile those columns are granted too, and the
-- trigger <table>_1_client_defaults puts back their default for every caller subject to
-- RLS: what a member sends for them is ignored, as the missing grant refuses it elsewhere.
-- service_role (all privileges, no RLS) keeps its values, as on the other profiles.
create function private.citus_client_defaults() returns trigger
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_values jsonb := '{}';
  v_value jsonb;
  i integer := 0;
begin
  if not private.caller_is_subject_to_rls() then
    return new;
  end if;
  -- tg_argv: column, default expression, column, default expression, ...; the expressions
  -- are the columns' own defaults, copied from the catalog when the trigger was created.
  while i < tg_nargs loop
    execute pg_catalog.format('select pg_catalog.to_jsonb(%s)', tg_argv[i + 1]) into v_value;
    v_values := v_values || pg_catalog.jsonb_build_object(tg_argv[i], v_value);
    i := i + 2;
  end loop;
  new := pg_catalog.jsonb_populate_record(new, v_values);
  return new;
end
$$;
comment on function private.citus_client_defaults() is
  'Trigger function (before insert, profile citus): for a caller subject to RLS, sets the columns named in the arguments (column, default expression pairs) to their defaults, whatever the insert said. They are granted for insert only because a Citus coordinator names every defaulted column in the shard insert.';
revoke execute on function private.citus_client_defaults() from public, anon;
grant execute on function private.citus_client_defaults() to authenticated, service_role;

-- Every table a member may insert into with a column list: grant the defaulted columns the
-- list leaves out, and reset them for members. Derived from the grants of the policies
-- migrations, so the set follows them (tests/citus/0100_citus_profile.sql lists it).
do $$
declare
  v_table record;
  v_path text := pg_catalog.current_setting('search_path');
begin
  -- The copied default expressions must name their types and functions in full: they run
  -- under the trigger function's search_path (pg_catalog, pg_temp).
  perform pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  for v_table in
    select c.oid::regclass as relation, c.relname,
           pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by a.attnum) as columns,
           pg_catalog.string_agg(pg_catalog.quote_literal(a.attname) || ', '
             || pg_catalog.quote_literal(pg_catalog.pg_get_expr(d.adbin, d.adrelid)), ', ' order by a.attnum) as args
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      join pg_catalog.pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
     where n.nspname in ('public', 'private', 'archive')
       and c.relkind = 'r'
       and a.attgenerated = ''
       and not pg_catalog.has_table_privilege('authenticated', c.oid, 'INSERT')
       and not pg_catalog.has_column_privilege('authenticated', c.oid, a.attnum, 'INSERT')
       and exists (select 1 from pg_catalog.pg_attribute x
                    where x.attrelid = c.oid and x.attnum > 0 and not x.attisdropped
                      and pg_catalog.has_column_privilege('authenticated', c.oid, x.attnum, 'INSERT'))
     group by c.oid, c.relname
     order by c.oid::regclass::text
  loop
    execute pg_catalog.format('grant insert (%s) on table %s to authenticated', v_table.columns, v_table.relation);
    execute pg_catalog.format(
      'create trigger %I before insert on %s for each row execute function private.citus_client_defaults(%s)',
      v_table.relname || '_1_client_defaults', v_table.relation, v_table.args);
    execute pg_catalog.format(
      'comment on trigger %I on %s is %L', v_table.relname || '_1_client_defaults', v_table.relation,
      'Profile citus: members'' values for ' || v_table.columns || ' are replaced by the defaults (granted only for the shard inserts of Citus).');
  end loop;
  perform pg_catalog.set_config('search_path', v_path, true);
end
$$;
