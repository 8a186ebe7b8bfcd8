{#- The truncate refusals (schema/3010_truncate_refused.sql, private.refuse_truncate) of every
    table whose entry in schema/_tables.toml says truncate_refused = "<what it feeds>":
    "<table>_truncate_refused" (before truncate, per statement; argument: what its delete
    triggers keep that a TRUNCATE would leave stale).
      {% from 'schema/_truncate_refused.sql' import truncate_refused_triggers -%}
      {{ truncate_refused_triggers() }}
    `neurant-db doctor` (trigger.truncate) fails on a table with a delete trigger and no
    before-truncate trigger other than the legal-hold guard. -#}
{% macro truncate_refused_triggers() -%}
{%- for entry in tables.truncate_refused() %}
create trigger {{ entry.relname }}_truncate_refused
  before truncate on {{ entry.name }}
  for each statement execute function private.refuse_truncate('{{ entry.truncate_refused | replace("'", "''") }}');
comment on trigger {{ entry.relname }}_truncate_refused on {{ entry.name }} is 'TRUNCATE fires no delete trigger, so it would leave {{ entry.truncate_refused | replace("'", "''") }} stale: refused for every role; delete the rows instead.';
{%- endfor %}
{%- endmacro %}

{% macro drop_truncate_refused_triggers() -%}
{%- for entry in tables.truncate_refused() | reverse %}
drop trigger {{ entry.relname }}_truncate_refused on {{ entry.name }};
{%- endfor %}
{%- endmacro %}
