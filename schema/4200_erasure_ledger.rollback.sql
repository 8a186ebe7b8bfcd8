-- Why: undoes 4200_erasure_ledger.sql (the ledger goes with its rows, policies and triggers).
{%- if profile == 'citus' %}
delete from private.citus_layout where relation = 'private.erasure_ledger'::regclass;
{%- endif %}
drop table private.erasure_ledger;
