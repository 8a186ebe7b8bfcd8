{#- The legal-hold triggers (schema/3000_lifecycle_schema.sql, private.legal_hold_guard) of
    every table whose entry in schema/_tables.toml has legal_hold = {...}: "<table>_legal_hold"
    (before update or delete, per row; arguments: how a row maps to holds, then the columns
    that may still change under a hold) and "<table>_legal_hold_truncate" (before truncate).
      {% from 'schema/_legal_hold.sql' import legal_hold_triggers -%}
      {{ legal_hold_triggers() }}
    `neurant-db doctor` (legal_hold.trigger) fails on a tenant table with neither the
    triggers nor allow.legal_hold in the registry. -#}
{% macro legal_hold_triggers() -%}
{%- for entry in tables.held() %}
{%- set hold = entry.legal_hold %}
{%- set events = 'update of ' ~ hold.update_of | join(', ') ~ ' or delete' if hold.update_of else hold.events %}
create trigger {{ entry.relname }}_legal_hold
  before {{ events }} on {{ entry.name }}
  for each row execute function private.legal_hold_guard('{{ ([hold.map] + hold.free | list) | join("', '") }}');
comment on trigger {{ entry.relname }}_legal_hold on {{ entry.name }} is '{{ hold.note | replace("'", "''") }}';
create trigger {{ entry.relname }}_legal_hold_truncate
  before truncate on {{ entry.name }}
  for each statement execute function private.legal_hold_guard('{{ hold.map }}');
comment on trigger {{ entry.relname }}_legal_hold_truncate on {{ entry.name }} is '{{ hold.truncate_note | replace("'", "''") }}';
{%- endfor %}
{%- endmacro %}

{% macro drop_legal_hold_triggers() -%}
{%- for entry in tables.held() | reverse %}
drop trigger {{ entry.relname }}_legal_hold_truncate on {{ entry.name }};
drop trigger {{ entry.relname }}_legal_hold on {{ entry.name }};
{%- endfor %}
{%- endmacro %}
