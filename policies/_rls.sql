{#- The RLS header of a table (CONVENTIONS.md, "Roles, grants, RLS"): enable and force row
    level security, revoke everything from the client roles (Supabase grants everything
    by default; the sequences its entry lists too), then grant what its entry in schema/_tables.toml lists under grants
    (service_role: all, unless the entry says otherwise), and, when the entry says
    read_only = true, the read-only policies of policies/_read_only.sql (unless
    with_read_only=false: a table created before private.require_company_writable,
    functions/0300, gets them from a later file). Call it where the table's policies are
    written, before them:
      {% from 'policies/_rls.sql' import rls -%}
      {{ rls('public.chatbots') }}
    drop_rls(tables...) undoes it for the rollback, with every policy of those tables
    (each table's policies are created in one migration: tests/test_table_registry.py). -#}
{% from 'policies/_read_only.sql' import read_only_when_inactive -%}
{% macro rls(table, with_read_only=true) -%}
{%- set entry = tables.secured(table) -%}
alter table {{ table }} enable row level security;
alter table {{ table }} force row level security;
revoke all on table {{ table }} from public, anon, authenticated, service_role;
{%- for sequence in entry.sequences %}
revoke all on sequence {{ sequence }} from public, anon, authenticated, service_role;
{%- endfor %}
{%- for role, privileges in entry.grants.items() %}
{%- for privilege in privileges %}
grant {{ privilege }} on table {{ table }} to {{ role }};
{%- endfor %}
{%- endfor %}
{%- if entry.read_only and with_read_only %}
{{ read_only_when_inactive(table) }}
{%- endif %}
{%- endmacro %}

{% macro drop_rls() -%}
{%- for table in varargs %}{% set _ = tables.secured(table) %}{% endfor -%}
do $$
declare
  v_table pg_catalog.regclass;
  v_policy pg_catalog.name;
begin
  foreach v_table in array array['{{ varargs | join("', '") }}']::pg_catalog.regclass[] loop
    for v_policy in select p.polname from pg_catalog.pg_policy p where p.polrelid = v_table loop
      execute pg_catalog.format('drop policy %I on %s', v_policy, v_table);
    end loop;
  end loop;
end
$$;
{%- for table in varargs %}
revoke all on table {{ table }} from anon, authenticated, service_role;
alter table {{ table }} no force row level security;
alter table {{ table }} disable row level security;
{%- endfor %}
{%- endmacro %}
