-- Why: undoes 3010_truncate_refused.sql.
{% from 'schema/_truncate_refused.sql' import drop_truncate_refused_triggers -%}
{{ drop_truncate_refused_triggers() }}
drop function private.refuse_truncate();
