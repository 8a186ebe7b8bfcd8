-- Why (issue 20, item 6): state kept by delete triggers (member, chatbot, document and
-- integration counters, the members' chatbot visibility, integrations.has_credentials, the
-- audit trail) and the guards on delete (one owner, legal holds are released, never deleted)
-- go stale or are bypassed by TRUNCATE, which fires no row or delete trigger:
-- `truncate public.chatbot_operators` as service_role left private.chatbot_visibility with
-- the removed assignments, so an operador kept reading. Recomputing all of that after a
-- TRUNCATE would duplicate every trigger; no path of the platform truncates these tables
-- (the jobs delete in batches), so TRUNCATE is refused on every table of schema/_tables.toml
-- that says truncate_refused, for every role, table owner included. `neurant-db doctor`
-- (trigger.truncate) fails on a table with a delete trigger and no such refusal.
{% from 'schema/_truncate_refused.sql' import truncate_refused_triggers -%}

create function private.refuse_truncate() returns trigger
  language plpgsql
  security invoker
  set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception using errcode = '42501',
    message = pg_catalog.format('%s.%s cannot be truncated: its delete triggers keep %s',
                                tg_table_schema, tg_table_name, tg_argv[0]),
    hint = pg_catalog.format('Delete the rows instead (delete from %s.%s ...), so the triggers keep that state exact.',
                             tg_table_schema, tg_table_name);
end;
$$;
comment on function private.refuse_truncate() is
  'Trigger function (before truncate, per statement): refuses TRUNCATE of a table whose delete triggers keep state elsewhere (argument: what that state is), which a TRUNCATE would leave stale; 42501 with a hint to delete the rows instead.';
revoke execute on function private.refuse_truncate() from public;
{{ truncate_refused_triggers() }}
