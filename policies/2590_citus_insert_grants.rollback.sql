-- Why: undoes 2590_citus_insert_grants.sql (profile citus only, like it): drops the
-- <table>_1_client_defaults triggers and revokes the insert grants of their columns.
do $$
declare
  v_trigger record;
begin
  for v_trigger in
    select t.tgname, t.tgrelid::regclass as relation,
           pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by a.attnum) as columns
      from pg_catalog.pg_trigger t
      join pg_catalog.pg_attribute a on a.attrelid = t.tgrelid and a.attnum > 0 and not a.attisdropped
      join pg_catalog.pg_attrdef d on d.adrelid = t.tgrelid and d.adnum = a.attnum
     where t.tgfoid = 'private.citus_client_defaults()'::regprocedure
       and a.attname::text = any (pg_catalog.string_to_array(
             pg_catalog.encode(t.tgargs, 'escape'), E'\\000'))
     group by t.tgname, t.tgrelid
  loop
    execute pg_catalog.format('revoke insert (%s) on table %s from authenticated', v_trigger.columns, v_trigger.relation);
    execute pg_catalog.format('drop trigger %I on %s', v_trigger.tgname, v_trigger.relation);
  end loop;
end
$$;
drop function private.citus_client_defaults();
