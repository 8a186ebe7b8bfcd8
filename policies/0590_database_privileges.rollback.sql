-- Why: undoes 0590_database_privileges.sql: PUBLIC gets back the default TEMPORARY
-- privilege on the database, service_role loses its explicit grant (when the applying
-- role may change the database's privileges; otherwise nothing changed on apply either).
do $$
declare
  v_db text := pg_catalog.current_database();
  v_may boolean;
begin
  select r.rolsuper or pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER')
    into v_may
    from pg_catalog.pg_database d cross join pg_catalog.pg_roles r
   where d.datname = v_db and r.rolname = current_user;
  if coalesce(v_may, false) then
    execute pg_catalog.format('grant temporary on database %I to public', v_db);
    execute pg_catalog.format('revoke temporary on database %I from service_role', v_db);
  end if;
end;
$$;

-- The timeouts of the request roles in this database (set by 0590 unless the role had its own).
do $$
declare
  v_db text := pg_catalog.current_database();
  v_role text;
  v_name text;
begin
  for v_role, v_name in
    select * from (values
{%- for role, name, _ in request_role_settings %}
      ('{{ role }}', '{{ name }}'){{ ',' if not loop.last }}
{%- endfor %}) as s (r, n)
  loop
    begin
      execute pg_catalog.format('alter role %I in database %I reset %s', v_role, v_db, v_name);
    exception when insufficient_privilege then
      raise notice 'neurant-db: % may not change the settings of role %', current_user, v_role;
    end;
  end loop;
end;
$$;

{% from 'policies/_database_privileges.sql' import large_object_functions, statistics_functions, statistics_views -%}
-- The large-object functions and activity statistics of pg_catalog: back to PUBLIC, and the
-- explicit grants 0590 made on the statistics taken back.
do $$
declare
  v_object text;
begin
  if not (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user) then
    return;
  end if;
  for v_object in
    {{ large_object_functions() }}
  loop
    execute pg_catalog.format('grant execute on function %s to public', v_object);
  end loop;
  for v_object in
    {{ statistics_functions() }}
  loop
    execute pg_catalog.format('grant execute on function %s to public', v_object);
    execute pg_catalog.format('revoke execute on function %s from service_role, pg_read_all_stats', v_object);
  end loop;
  for v_object in
    {{ statistics_views() }}
  loop
    execute pg_catalog.format('grant select on %s to public', v_object);
    execute pg_catalog.format('revoke select on %s from service_role, pg_read_all_stats', v_object);
  end loop;
end;
$$;
