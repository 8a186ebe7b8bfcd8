-- Why: undoes 4710_erasure_replay.sql.
drop function private.erasure_replay(uuid, uuid, text, text);
