-- Extensions and internal schemas: pgvector lives in the schema
-- {{ vector_schema }} (as on Supabase) and `private` holds trigger functions and
-- internal helpers that clients must never call directly.
{% if profile in ('vanilla', 'citus') %}
create schema if not exists {{ vector_schema }};
comment on schema {{ vector_schema }} is 'Extensions (pgvector) are installed here, as on Supabase.';
grant usage on schema {{ vector_schema }} to anon, authenticated, service_role;
{% endif %}

do $$
declare
  v_schema text;
begin
  select n.nspname into v_schema
    from pg_catalog.pg_extension e
    join pg_catalog.pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'vector';
  if v_schema is not null and v_schema <> '{{ vector_schema }}' then
    raise exception using
      errcode = '55000',
      message = format('extension vector is installed in schema %I, expected {{ vector_schema }}', v_schema),
      hint = 'Run: alter extension vector set schema {{ vector_schema }}.';
  end if;
end
$$;

create extension if not exists vector with schema {{ vector_schema }};

create schema private;
comment on schema private is
  'Internal helpers and trigger functions of neurant-db. Not exposed: no privileges for anon/authenticated.';
revoke all on schema private from public;
