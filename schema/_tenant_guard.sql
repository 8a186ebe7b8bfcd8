{#- The tenant guard of a tenant table (schema/0060_tenant_guard.sql): two triggers running
    private.reject_other_tenant_insert() first, each with the function's own first test as
    its WHEN clause, so a backend write or an update that keeps company_id calls nothing.
    Call it in the file that creates the table, after the table:
      {% from 'schema/_tenant_guard.sql' import tenant_guard -%}
      {{ tenant_guard('public.chatbots', 'Fires first, for callers subject to RLS only (when): ...') }}
    `neurant-db doctor` (tenant.guard) fails on a tenant table without both triggers, or
    with any other WHEN clause. The triggers go with their table on rollback. -#}
{% macro tenant_guard(table, insert_comment, key_comment='Fires first on update, only when company_id changes (when): the tenant key never changes, for any role.') -%}
{%- set name = table.split('.')[-1] -%}
create trigger {{ name }}_0_tenant_guard
  before insert on {{ table }}
  for each row when (pg_catalog.row_security_active('{{ table }}'::regclass))
  execute function private.reject_other_tenant_insert();
comment on trigger {{ name }}_0_tenant_guard on {{ table }} is
  '{{ insert_comment }}';
create trigger {{ name }}_0_tenant_key
  before update on {{ table }}
  for each row when (new.company_id is distinct from old.company_id)
  execute function private.reject_other_tenant_insert();
comment on trigger {{ name }}_0_tenant_key on {{ table }} is
  '{{ key_comment }}';
{%- endmacro %}
