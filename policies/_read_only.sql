{#- Read-only tenants (functions/0300_context_helpers.sql, private.require_company_writable):
    the three restrictive policies every tenant table carries, so that a suspended or
    canceled company writes nothing through RLS (NA002 with a hint; reads unchanged).
    Call it in the policies file of each tenant table, after its other policies:
      {% from 'policies/_read_only.sql' import read_only_when_inactive %}
      {{ read_only_when_inactive('public.chatbots') }}
    The table's entry in schema/_tables.toml says read_only = true (else the render stops).
    `neurant-db doctor` (policy.read_only) fails on a tenant table without them. -#}
{% macro read_only_when_inactive(table) -%}
{%- set _ = tables.read_only(table) -%}
create policy insert_while_writable on {{ table }}
  as restrictive for insert to authenticated
  with check ((select private.require_company_writable()));
comment on policy insert_while_writable on {{ table }} is
  'Read-only tenants: no member inserts while the company''s subscription is suspended or canceled (NA002).';
create policy update_while_writable on {{ table }}
  as restrictive for update to authenticated
  using ((select private.require_company_writable()))
  with check ((select private.require_company_writable()));
comment on policy update_while_writable on {{ table }} is
  'Read-only tenants: no member updates while the company''s subscription is suspended or canceled (NA002).';
create policy delete_while_writable on {{ table }}
  as restrictive for delete to authenticated
  using ((select private.require_company_writable()));
comment on policy delete_while_writable on {{ table }} is
  'Read-only tenants: no member deletes while the company''s subscription is suspended or canceled (NA002).';
{%- endmacro %}

{% macro drop_read_only_when_inactive(table) -%}
drop policy delete_while_writable on {{ table }};
drop policy update_while_writable on {{ table }};
drop policy insert_while_writable on {{ table }};
{%- endmacro %}
