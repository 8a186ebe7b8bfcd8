-- Shared trigger function keeping updated_at exact on every table that has it
-- (used by all domains: before update ... execute function private.touch_updated_at()).
create function private.touch_updated_at() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function private.touch_updated_at() is
  'Trigger function (before update, for each row): sets new.updated_at to the transaction timestamp.';
revoke execute on function private.touch_updated_at() from public;
