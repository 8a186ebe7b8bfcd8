{#- Text the lifecycle jobs share (functions/3310_archive_jobs.sql, 3320_retention_jobs.sql).
    Every statement of a job batch names one company (`<alias>.company_id = k.company_id`):
    on Citus it is then routed to the one shard holding that company, and takes its row locks
    there; on plain PostgreSQL it is an index range of that company.
      {% from 'functions/_lifecycle.sql' import not_held, conversation_tables, move_to_archive -%}
-#}

{#- True unless an active legal hold covers the conversation: one on it, or one on its whole
    company (placed after the batch read the company's cutoffs). -#}
{% macro not_held(company, conversation) -%}
not exists (select 1 from public.legal_holds h
                            where h.company_id = {{ company }} and h.released_at is null
                              and (h.conversation_id is null or h.conversation_id = {{ conversation }}))
{%- endmacro %}

{#- The tables whose rows hang off a conversation (legal_hold.map = "conversation_id" in
    schema/_tables.toml) in schema `schema`, in registry order (a referenced table before the
    tables referencing it; reversed, a safe order to delete in). -#}
{% macro conversation_tables(schema) -%}
{{ tables.held() | selectattr('schema', 'eq', schema) | selectattr('legal_hold.map', 'eq', 'conversation_id')
   | map(attribute='name') | join(' ') }}
{%- endmacro %}

{#- One archive move of an archive batch: delete the company's rows of `source` whose `key`
    is in v_ids, insert exactly those rows (`columns`, then archived_at = v_now) into
    `target` in the same statement, and add their count to v_out under `label`. -#}
{% macro move_to_archive(source, alias, key, target, columns, label) -%}
with moved as (
      delete from {{ source }} {{ alias }} where {{ alias }}.company_id = k.company_id and {{ alias }}.{{ key }} = any (v_ids)
      returning {{ alias }}.*)
    insert into {{ target }}
      ({{ columns }}, archived_at)
    select {{ columns }}, v_now from moved;
    get diagnostics n = row_count;
    v_out := private.jsonb_add_counts(v_out, pg_catalog.jsonb_build_object('{{ label }}', n));
{%- endmacro %}
