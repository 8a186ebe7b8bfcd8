-- Why: domain lifecycle (GDPR Art. 17, issue 24), object private.erasure_replay (new;
-- supersedes nothing). A restored backup or an imported tenant export older than an erasure
-- holds the end user's data again. The newer ledger (of the live source database, or a file
-- exported from it) names each request by its id and the end user's subject reference
-- (sha256 of company and end-user id), never by the id itself: this function finds, in this
-- database, the end user of the company whose end_user_id hashes to that reference (the
-- hash computed over the distinct end-user ids of the company's live and archived
-- conversations) and erases them through public.erase_end_user, the same rules as a request
-- made here (legal holds defer), then marks the ledger row it wrote as the replay of the
-- original request (private.erasure_ledger.replay_of, schema/4700). A request already here
-- (its own row: the copy is newer than it; or an earlier replay) is left alone, so replaying
-- twice changes nothing. A request matching nobody (the data was never here, or is already
-- redacted) is recorded all the same, with nothing erased: the ledger here becomes complete,
-- and the next replay skips it.
create function private.erasure_replay(p_company_id uuid, p_request_id uuid, p_subject_ref text, p_reason text)
  returns jsonb
  language plpgsql volatile security invoker
  set search_path = pg_catalog, pg_temp{{ citus_sequential('  ') }}
as $$
declare
  v_users text[];
  v_receipt jsonb;
  v_id uuid := pg_catalog.gen_random_uuid();
  v_at timestamptz := pg_catalog.now();
  v_by text;
  v_reason text;
begin
  if p_company_id is null or p_request_id is null or p_subject_ref is null
     or p_subject_ref !~ '^[0-9a-f]{64}$' then
    raise exception using errcode = '22023',
      message = 'erasure_replay needs a company, the request''s ledger id and its subject reference (64 hex digits)',
      hint = 'Pass the entries of the newer private.erasure_ledger (neurant-db erase --replay-from).';
  end if;
  if not exists (select 1 from public.companies c where c.id = p_company_id) then
    return pg_catalog.jsonb_build_object('request', p_request_id, 'company_id', p_company_id,
                                         'outcome', 'company_absent');
  end if;
  if exists (select 1 from private.erasure_ledger l
              where l.company_id = p_company_id and (l.id = p_request_id or l.replay_of = p_request_id)) then
    return pg_catalog.jsonb_build_object('request', p_request_id, 'company_id', p_company_id,
                                         'outcome', 'already_present');
  end if;
  select coalesce(pg_catalog.array_agg(s.end_user_id), '{}'::text[]) into v_users
    from (select c.end_user_id from public.conversations c where c.company_id = p_company_id
          union
          select a.end_user_id from archive.conversations_archived a where a.company_id = p_company_id) s
   where private.erasure_subject_ref(p_company_id, s.end_user_id) = p_subject_ref;
  v_reason := pg_catalog.left(coalesce(nullif(pg_catalog.btrim(p_reason), ''), 'replayed erasure'), 500);
  if pg_catalog.char_length(v_reason) < 3 then
    v_reason := 'replayed erasure';
  end if;
  if pg_catalog.cardinality(v_users) = 0 then
    v_by := pg_catalog.left(session_user::text, 200);
    insert into private.erasure_ledger (company_id, id, subject_ref, reason, requested_by, requested_at, status,
                                        erased, deferred_conversation_ids, completed_at, replay_of)
    values (p_company_id, v_id, p_subject_ref, v_reason, v_by, v_at, 'done', '{}'::jsonb, '{}'::uuid[], v_at,
            p_request_id);
    return pg_catalog.jsonb_build_object('request', p_request_id, 'company_id', p_company_id,
                                         'outcome', 'matched_nobody', 'ledger_id', v_id);
  end if;
  -- one reference names one end-user id (sha256): at most one element, erased by the rules of a request
  v_receipt := public.erase_end_user(p_company_id, v_users[1], v_reason);
  v_id := (v_receipt ->> 'ledger_id')::uuid;
  update private.erasure_ledger l set replay_of = p_request_id
   where l.company_id = p_company_id and l.id = v_id;
  return pg_catalog.jsonb_build_object('request', p_request_id, 'company_id', p_company_id, 'outcome', 'replayed',
                                       'ledger_id', v_id, 'status', v_receipt -> 'status',
                                       'conversations', v_receipt -> 'conversations', 'erased', v_receipt -> 'erased',
                                       'deferred_conversations', v_receipt -> 'deferred_conversations');
end
$$;
comment on function private.erasure_replay(uuid, uuid, text, text) is
  'Carries out again, after a restore or an import, an erasure request of a newer ledger (service_role): unless the request is already here (ledger id or replay_of), erases the company''s end user whose id hashes to the subject reference through public.erase_end_user (legal holds defer) and marks the row replay_of the request; records a request matching nobody with nothing erased. '
  'Returns {request, company_id, outcome: replayed | already_present | matched_nobody | company_absent, ledger_id, status, erased, ...}; never an end-user id.';
revoke execute on function private.erasure_replay(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function private.erasure_replay(uuid, uuid, text, text) to service_role;
