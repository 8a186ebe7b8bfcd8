-- Why: defence in depth for "trusted code never uses an object an end user can create"
-- (issue 9). A temp table, domain or function an end user creates lives in the session's
-- pg_temp, which a pooler then hands to the backend (service_role); pg_temp is searched
-- first for relations and types unless a path lists it last. The functions are immune on
-- their own (set search_path = pg_catalog, pg_temp; no pg_temp objects; doctor checks
-- trusted.temp / trusted.unqualified); this also takes TEMPORARY away from the client
-- roles, so they cannot plant anything at all. service_role keeps it (the cold export
-- uses temp key tables).
--
-- Only the database owner (or a member of its role, or a superuser) may revoke the
-- default PUBLIC grant. When the applying role is not, the migration changes nothing and
-- says so in a NOTICE (it never fails: the package must apply on a database it does not
-- own). On Supabase the migrations run as postgres: when postgres owns the database the
-- revoke applies; a TEMPORARY grant made by another role (supabase_admin) cannot be taken
-- back by postgres and is reported in a NOTICE too (docs/services.md, "Temporary objects").
do $$
declare
  v_db text := pg_catalog.current_database();
  v_may boolean;
  v_still text;
begin
  select r.rolsuper or pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER')
    into v_may
    from pg_catalog.pg_database d cross join pg_catalog.pg_roles r
   where d.datname = v_db and r.rolname = current_user;
  if coalesce(v_may, false) then
    execute pg_catalog.format('revoke temporary on database %I from public, anon, authenticated', v_db);
    execute pg_catalog.format('grant temporary on database %I to service_role', v_db);
  else
    raise notice 'neurant-db: % does not own database %, so TEMPORARY stays granted to PUBLIC', current_user, v_db
      using hint = 'Have the database owner revoke TEMPORARY on it from public, anon and authenticated and grant it to service_role.';
  end if;
  select pg_catalog.string_agg(r.rolname, ', ' order by r.rolname) into v_still
    from pg_catalog.pg_roles r
   where r.rolname in ('anon', 'authenticated')
     and pg_catalog.has_database_privilege(r.oid, v_db, 'TEMPORARY');
  if v_still is not null then
    raise notice 'neurant-db: % may still create temporary objects in database % (granted by a role other than %)',
      v_still, v_db, current_user
      using hint = 'The schema does not depend on it (trusted functions ignore pg_temp), but revoke it as that role if you can.';
  end if;
end;
$$;

-- Why (issue 20, item 1): bound how long a request can hold or wait for what it may lock.
-- A member's statement takes at most ROW EXCLUSIVE on a shared table (no request role holds
-- table-level UPDATE, DELETE or TRUNCATE: functions/0350), and row locks; these settings
-- bound how long it may run, wait for a lock, or sit idle in an open transaction holding
-- them. Set for this database only (`alter role ... in database`), and only where nobody set
-- the same setting for the role already: on Supabase the platform sets statement_timeout
-- for anon (3s) and authenticated (8s) cluster-wide, and that value stays. The settings apply
-- when a session logs in as the role (profile citus) and PostgREST applies them to every
-- request it runs as the role; a `set role` in an existing session does not (docs/services.md,
-- "Timeouts of the request roles"). Changing a role's settings needs a superuser or
-- CREATEROLE (with ADMIN OPTION on the role on PostgreSQL 16+): without it the migration
-- changes nothing and says so in a NOTICE. The values come from
-- runner/neurant_db/role_settings.py (PROJECT_SETTINGS), where `neurant-db doctor` and
-- `preflight` read them to report any other setting of the request roles (role.setting).
do $$
declare
  v_db text := pg_catalog.current_database();
  v_role text;
  v_name text;
  v_value text;
begin
  for v_role, v_name, v_value in
    select * from (values
{%- for role, name, value in request_role_settings %}
      ('{{ role }}', '{{ name }}', '{{ value }}'){{ ',' if not loop.last }}
{%- endfor %}) as s (r, n, v)
  loop
    if exists (
         select 1
           from pg_catalog.pg_db_role_setting s
           join pg_catalog.pg_roles r on r.oid = s.setrole
           cross join lateral pg_catalog.unnest(s.setconfig) as c (item)
          where r.rolname = v_role
            and (s.setdatabase = 0
                 or s.setdatabase = (select d.oid from pg_catalog.pg_database d where d.datname = v_db))
            and c.item like v_name || '=%'
            and c.item <> v_name || '=' || v_value) then
      raise notice 'neurant-db: % already has a % of its own, kept', v_role, v_name;
      continue;
    end if;
    begin
      execute pg_catalog.format('alter role %I in database %I set %s = %L', v_role, v_db, v_name, v_value);
    exception when insufficient_privilege then
      raise notice 'neurant-db: % may not change the settings of role %', current_user, v_role
        using hint = pg_catalog.format('Have a superuser run: alter role %I in database %I set %s = %L;',
                                       v_role, v_db, v_name, v_value);
    end;
  end loop;
end;
$$;

{% from 'policies/_database_privileges.sql' import large_object_functions, statistics_functions, statistics_views -%}
-- Why (issue 20, item 7): side channels of the request roles into other companies.
-- Large objects: any role may create them (lo_from_bytea, lo_create, ...) with no quota; one
-- created by a member is owned by the shared role authenticated, so every other company's
-- users may read and overwrite it (lo_get, lo_put). Activity counters: the per-table and
-- per-database statistics (pg_stat_user_tables.n_tup_ins, pg_stat_get_tuples_inserted(oid),
-- ...) count every company's rows, so any member could follow other tenants' volumes. The
-- request roles get neither: EXECUTE on the large-object functions and on the per-object
-- pg_stat_get_* functions, and SELECT on the statistics views, are revoked from PUBLIC in this
-- database; the statistics stay readable by service_role, pg_read_all_stats (monitoring) and
-- the applying role. Only a superuser may change the privileges of pg_catalog's objects: any
-- other applying role (postgres on Supabase) changes nothing, and a NOTICE says so. What
-- cannot be closed this way (planner estimates shown by EXPLAIN) is in docs/services.md,
-- "Side channels".
do $$
declare
  v_object text;
begin
  if not (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = current_user) then
    raise notice 'neurant-db: % is not a superuser: large objects and activity statistics stay open to the request roles', current_user
      using hint = 'Have a superuser revoke EXECUTE on the lo_* functions and the pg_stat_get_*(oid) functions, and SELECT on the pg_stat*/pg_statio* table views, from PUBLIC in this database (docs/services.md, "Side channels").';
    return;
  end if;
  for v_object in
    {{ large_object_functions() }}
  loop
    execute pg_catalog.format('revoke execute on function %s from public', v_object);
  end loop;
  for v_object in
    {{ statistics_functions() }}
  loop
    execute pg_catalog.format('revoke execute on function %s from public', v_object);
    execute pg_catalog.format('grant execute on function %s to service_role, pg_read_all_stats, %I', v_object, current_user);
  end loop;
  for v_object in
    {{ statistics_views() }}
  loop
    execute pg_catalog.format('revoke select on %s from public', v_object);
    execute pg_catalog.format('grant select on %s to service_role, pg_read_all_stats, %I', v_object, current_user);
  end loop;
end;
$$;
