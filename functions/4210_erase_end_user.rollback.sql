-- Why: undoes 4210_erase_end_user.sql (the ledger itself goes with 4200's rollback).
drop trigger legal_holds_erasure_release on public.legal_holds;
drop function private.erasure_on_hold_release();
drop function public.erase_end_user(uuid, text, text);
drop function private.erasure_add_counts(jsonb, jsonb);
drop function private.erasure_redact(uuid, uuid[]);
drop function private.erasure_subject_ref(uuid, text);
