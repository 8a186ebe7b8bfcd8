-- Undo 0210_touch_updated_at.
drop function private.touch_updated_at();
