{#- policies/0590_database_privileges.sql and its rollback: the objects of pg_catalog whose
    PUBLIC privileges 0590 takes from the request roles (issue 20, item 7), one list for the
    revoke and its undo. Each macro renders a query returning the objects as text, for a
    `for v_object in ... loop`. -#}
{% macro large_object_functions() -%}
select p.oid::pg_catalog.regprocedure::text
      from pg_catalog.pg_proc p
     where p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
       and (p.proname ~ '^lo_' or p.proname in ('loread', 'lowrite'))
{%- endmacro %}

{% macro statistics_functions() -%}
select p.oid::pg_catalog.regprocedure::text
      from pg_catalog.pg_proc p
     where p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
       and p.proname ~ '^pg_stat_get_' and p.pronargs = 1 and p.proargtypes[0] = 'pg_catalog.oid'::pg_catalog.regtype
{%- endmacro %}

{% macro statistics_views() -%}
select c.oid::pg_catalog.regclass::text
      from pg_catalog.pg_class c
     where c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace and c.relkind = 'v'
       and (c.relname ~ '^pg_stat(io)?_(xact_)?(all|user|sys)_(tables|indexes|sequences|functions)$'
            or c.relname = 'pg_stat_database')
{%- endmacro %}
