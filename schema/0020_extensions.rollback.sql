-- Why: undoes 0020_extensions.sql: drop the private schema and, on vanilla, pgvector and
-- its schema. On Supabase the extension is left installed (it may have been
-- enabled from the dashboard before this package).
drop schema private;
{% if profile in ('vanilla', 'citus') %}
drop extension if exists vector;
drop schema if exists {{ vector_schema }};
{% endif %}
