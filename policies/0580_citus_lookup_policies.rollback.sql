-- Why: undoes 0580_citus_lookup_policies.sql (profile citus only, like it).
{% from 'policies/_read_only.sql' import drop_read_only_when_inactive %}
{{ drop_read_only_when_inactive('private.memberships') }}
drop policy select_none on private.memberships;
