-- Why: undoes 0040_touch_updated_at.sql.
drop function private.touch_updated_at();
