{#- The tenant guard of a tenant table (schema/0060_tenant_guard.sql): two triggers running
    private.reject_other_tenant_insert() first, each with the function's own first test as
    its WHEN clause, so a backend write or an update that keeps company_id calls nothing.
    Call it in the file that creates the table, after the table:
      {% from 'schema/_tenant_guard.sql' import tenant_guard -%}
      {{ tenant_guard('public.chatbots') }}
    The trigger comments come from the table's entry in schema/_tables.toml (guard_note,
    guard_key_note); a table the registry does not list as a tenant table stops the render.
    `neurant-db doctor` (tenant.guard) fails on a tenant table without both triggers, or
    with any other WHEN clause. The triggers go with their table on rollback; a guard
    attached outside the table's file is dropped with drop_tenant_guard. -#}
{% macro tenant_guard(table) -%}
{%- set entry = tables.guarded(table) -%}
create trigger {{ entry.relname }}_0_tenant_guard
  before insert on {{ table }}
  for each row when (pg_catalog.row_security_active('{{ table }}'::regclass))
  execute function private.reject_other_tenant_insert();
comment on trigger {{ entry.relname }}_0_tenant_guard on {{ table }} is
  'Fires first, for callers subject to RLS only (when): {{ entry.guard_note | replace("'", "''") }}';
create trigger {{ entry.relname }}_0_tenant_key
  before update on {{ table }}
  for each row when (new.company_id is distinct from old.company_id)
  execute function private.reject_other_tenant_insert();
comment on trigger {{ entry.relname }}_0_tenant_key on {{ table }} is
  'Fires first on update, only when company_id changes (when): {{ entry.guard_key_note | replace("'", "''") }}';
{%- endmacro %}

{% macro drop_tenant_guard(table) -%}
{%- set entry = tables.guarded(table) -%}
drop trigger {{ entry.relname }}_0_tenant_key on {{ table }};
drop trigger {{ entry.relname }}_0_tenant_guard on {{ table }};
{%- endmacro %}

{#- The `doctor: allow <check> <reason>` notes of a table (its [table."x".allow] entries),
    to close the table's comment, so a DBA reading the catalog sees the exception:
      comment on table public.users is
        'Members of a company. ...'{{ doctor_notes('public.users') }};
    With a second argument, those of one of its constraints or indexes
    ("tenant.unique users_auth_user_id_key" = ...), for that object's comment.
    Renders nothing for a table without exceptions. -#}
{% macro doctor_notes(table, object=none) -%}
{%- for check, reason in tables[table].notes(object) %}
  ' doctor: allow {{ check }} {{ reason | replace("'", "''") }}'
{%- endfor -%}
{%- endmacro %}
