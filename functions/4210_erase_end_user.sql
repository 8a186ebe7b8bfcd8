-- Why: domain lifecycle (GDPR Art. 17, issue 24), objects public.erase_end_user,
-- private.erasure_subject_ref, private.erasure_redact, private.erasure_on_hold_release and
-- the trigger legal_holds_erasure_release (new; supersede nothing). Erasing an end user
-- redacts, irreversibly, every personal column of their conversations in the live and the
-- archive tables: conversations.end_user_id becomes 'erased', message content '[erased]',
-- reaction comments and escalation details ''. The rows themselves stay, so the daily
-- analytics (recomputed from live and archived rows by functions/3330) keep their totals
-- without the identity; knowledge queries hold no personal column (ids, similarity, rank)
-- and stay as they are, counted. Cold-storage files are rewritten by `neurant-db erase`
-- (runner/neurant_db/erasure.py).
--
-- Legal holds win: a held conversation is not touched; the request is recorded as deferred
-- with the held conversation ids. The deferred part runs in a trigger on the release of a
-- hold (after update of released_at on public.legal_holds), in the releasing transaction:
-- no job to schedule or forget, and no moment where a released conversation is still
-- waiting for its erasure. Redaction updates rows and deletes nothing, so it is cheap
-- enough for that transaction.

create function private.erasure_subject_ref(p_company_id uuid, p_end_user_id text) returns text
  language sql immutable strict parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(p_company_id::text || ':' || p_end_user_id, 'UTF8')), 'hex')
$$;
comment on function private.erasure_subject_ref(uuid, text) is
  'The erasure ledger''s reference to an end user: hex sha256 of "<company_id>:<end_user_id>" (not reversible; recomputable by whoever knows the id).';
revoke execute on function private.erasure_subject_ref(uuid, text) from public, anon, authenticated;
grant execute on function private.erasure_subject_ref(uuid, text) to service_role;

create function private.erasure_redact(p_company_id uuid, p_conversation_ids uuid[]) returns jsonb
  language plpgsql volatile security invoker
  set search_path = pg_catalog, pg_temp{{ citus_settings('  ') }}{{ citus_sequential('  ') }}
as $$
declare
  v_counts jsonb := '{}'::jsonb;
  v_n bigint;
begin
  if p_company_id is null or coalesce(pg_catalog.cardinality(p_conversation_ids), 0) = 0 then
    return v_counts;
  end if;
  update public.messages t set content = '[erased]'
   where t.company_id = p_company_id and t.conversation_id = any (p_conversation_ids);
  get diagnostics v_n = row_count;
  v_counts := v_counts || pg_catalog.jsonb_build_object('public.messages', v_n);
  update archive.messages_archived t set content = '[erased]'
   where t.company_id = p_company_id and t.conversation_id = any (p_conversation_ids);
  get diagnostics v_n = row_count;
  v_counts := v_counts || pg_catalog.jsonb_build_object('archive.messages_archived', v_n);
  update public.message_reactions t set comment = ''
   where t.company_id = p_company_id and t.conversation_id = any (p_conversation_ids);
  get diagnostics v_n = row_count;
  v_counts := v_counts || pg_catalog.jsonb_build_object('public.message_reactions', v_n);
  update archive.message_reactions_archived t set comment = ''
   where t.company_id = p_company_id and t.conversation_id = any (p_conversation_ids);
  get diagnostics v_n = row_count;
  v_counts := v_counts || pg_catalog.jsonb_build_object('archive.message_reactions_archived', v_n);
  update public.hitl_escalations t set detail = ''
   where t.company_id = p_company_id and t.conversation_id = any (p_conversation_ids);
  get diagnostics v_n = row_count;
  v_counts := v_counts || pg_catalog.jsonb_build_object('public.hitl_escalations', v_n);
  update archive.hitl_escalations_archived t set detail = ''
   where t.company_id = p_company_id and t.conversation_id = any (p_conversation_ids);
  get diagnostics v_n = row_count;
  v_counts := v_counts || pg_catalog.jsonb_build_object('archive.hitl_escalations_archived', v_n);
  -- no personal column: counted (they point only at redacted messages), not changed
  select pg_catalog.count(*) into v_n from public.knowledge_queries t
   where t.company_id = p_company_id and t.conversation_id = any (p_conversation_ids);
  v_counts := v_counts || pg_catalog.jsonb_build_object('public.knowledge_queries', v_n);
  select pg_catalog.count(*) into v_n from archive.knowledge_queries_archived t
   where t.company_id = p_company_id and t.conversation_id = any (p_conversation_ids);
  v_counts := v_counts || pg_catalog.jsonb_build_object('archive.knowledge_queries_archived', v_n);
  update public.conversations t set end_user_id = 'erased'
   where t.company_id = p_company_id and t.id = any (p_conversation_ids);
  get diagnostics v_n = row_count;
  v_counts := v_counts || pg_catalog.jsonb_build_object('public.conversations', v_n);
  update archive.conversations_archived t set end_user_id = 'erased'
   where t.company_id = p_company_id and t.id = any (p_conversation_ids);
  get diagnostics v_n = row_count;
  v_counts := v_counts || pg_catalog.jsonb_build_object('archive.conversations_archived', v_n);
  return v_counts;
end
$$;
comment on function private.erasure_redact(uuid, uuid[]) is
  'Redacts, irreversibly, the personal columns of the given conversations of a company in the live and archive tables (end_user_id, message content, reaction comments, escalation details); rows stay, so analytics keep their totals. '
  'Returns rows per table. Does not check legal holds: its callers pass only unheld conversations (the legal-hold triggers refuse held ones anyway). Security invoker, for service_role (BYPASSRLS) and the owner: on Citus a definer would write, as another user, placements its caller read in the same transaction (25001).';
revoke execute on function private.erasure_redact(uuid, uuid[]) from public, anon, authenticated;
grant execute on function private.erasure_redact(uuid, uuid[]) to service_role;

-- The sum of two count objects ({"t": n} + {"t": m} = {"t": n + m}).
create function private.erasure_add_counts(p_a jsonb, p_b jsonb) returns jsonb
  language sql immutable parallel safe
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce(pg_catalog.jsonb_object_agg(k, v), '{}'::jsonb)
    from (select k, pg_catalog.sum(v::bigint) as v
            from (select a.key as k, a.value as v from pg_catalog.jsonb_each_text(coalesce(p_a, '{}'::jsonb)) a
                  union all
                  select b.key, b.value from pg_catalog.jsonb_each_text(coalesce(p_b, '{}'::jsonb)) b) s
           group by k) t
$$;
comment on function private.erasure_add_counts(jsonb, jsonb) is 'The per-table sum of two erasure count objects (private.erasure_ledger.erased).';
revoke execute on function private.erasure_add_counts(jsonb, jsonb) from public, anon, authenticated;
grant execute on function private.erasure_add_counts(jsonb, jsonb) to service_role;

create function public.erase_end_user(p_company_id uuid, p_end_user_id text, p_reason text) returns jsonb
  language plpgsql volatile security invoker
  set search_path = pg_catalog, pg_temp{{ citus_sequential('  ') }}
as $$
declare
  v_ids uuid[];
  v_held uuid[];
  v_free uuid[];
  v_counts jsonb;
  v_id uuid := pg_catalog.gen_random_uuid();
  v_status text;
  v_ref text;
  v_by text;
  v_at timestamptz := pg_catalog.now();
begin
  if p_company_id is null or p_end_user_id is null or pg_catalog.char_length(p_end_user_id) not between 1 and 255 then
    raise exception using errcode = '22023',
      message = 'erase_end_user needs a company and an end-user id (1-255 characters)',
      hint = 'Pass the company id and the end_user_id of its conversations.';
  end if;
  if p_reason is null or pg_catalog.char_length(pg_catalog.btrim(p_reason)) not between 3 and 500 then
    raise exception using errcode = '22023',
      message = 'erase_end_user needs a reason of 3-500 characters',
      hint = 'Name the request (ticket, legal basis), without personal data.';
  end if;
  if not exists (select 1 from public.companies c where c.id = p_company_id) then
    raise exception using errcode = '22023',
      message = pg_catalog.format('company %s does not exist', p_company_id),
      hint = 'Pass the id of an existing company.';
  end if;
  select pg_catalog.array_agg(distinct s.id) into v_ids
    from (select c.id from public.conversations c
           where c.company_id = p_company_id and c.end_user_id = p_end_user_id
          union all
          select a.id from archive.conversations_archived a
           where a.company_id = p_company_id and a.end_user_id = p_end_user_id) s;
  v_ids := coalesce(v_ids, '{}'::uuid[]);
  -- Legal holds win: a conversation under an active hold (its own, or company-wide) waits.
  select coalesce(pg_catalog.array_agg(i) filter (where held), '{}'::uuid[]),
         coalesce(pg_catalog.array_agg(i) filter (where not held), '{}'::uuid[])
    into v_held, v_free
    from (select i, exists (select 1 from public.legal_holds h
                             where h.company_id = p_company_id and h.released_at is null
                               and (h.conversation_id is null or h.conversation_id = i)) as held
            from pg_catalog.unnest(v_ids) i) s;
  v_counts := private.erasure_redact(p_company_id, v_free);
  v_status := case when pg_catalog.cardinality(v_held) > 0 then 'deferred' else 'done' end;
  v_ref := private.erasure_subject_ref(p_company_id, p_end_user_id);
  v_by := pg_catalog.left(session_user::text
            || coalesce(' sub=' || nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''), ''), 200);
  insert into private.erasure_ledger (company_id, id, subject_ref, reason, requested_by, requested_at, status,
                                      erased, deferred_conversation_ids, completed_at)
  values (p_company_id, v_id, v_ref, pg_catalog.btrim(p_reason), v_by, v_at, v_status, v_counts, v_held,
          case when v_status = 'done' then v_at end);
  return pg_catalog.jsonb_build_object(
    'ledger_id', v_id, 'company_id', p_company_id, 'subject_ref', v_ref, 'requested_at', v_at,
    'status', v_status, 'conversations', pg_catalog.cardinality(v_ids), 'erased', v_counts,
    'deferred_conversations', pg_catalog.cardinality(v_held));
end
$$;
comment on function public.erase_end_user(uuid, text, text) is
  'GDPR Art. 17 (service_role only): redacts every conversation of the end user in the company, live and archived (end_user_id, message content, reaction comments, escalation details), except those under an active legal hold, which are deferred to the hold''s release. '
  'Records the request in private.erasure_ledger (no personal data: the end user as a sha256 reference) and returns the receipt (ledger_id, status, rows per table, deferred count). Cold files: neurant-db erase.';
revoke execute on function public.erase_end_user(uuid, text, text) from public, anon, authenticated;
grant execute on function public.erase_end_user(uuid, text, text) to service_role;

create function private.erasure_on_hold_release() returns trigger
  language plpgsql volatile security invoker
  set search_path = pg_catalog, pg_temp{{ citus_settings('  ') }}{{ citus_sequential('  ') }}
as $$
declare
  v_request record;
  v_free uuid[];
  v_left uuid[];
  v_counts jsonb;
  v_status text;
  v_done_at timestamptz;
begin
  for v_request in
    select l.id, l.deferred_conversation_ids from private.erasure_ledger l
     where l.company_id = new.company_id and l.status = 'deferred'
     order by l.requested_at, l.id
  loop
    select coalesce(pg_catalog.array_agg(i) filter (where not held), '{}'::uuid[]),
           coalesce(pg_catalog.array_agg(i) filter (where held), '{}'::uuid[])
      into v_free, v_left
      from (select i, exists (select 1 from public.legal_holds h
                               where h.company_id = new.company_id and h.released_at is null
                                 and (h.conversation_id is null or h.conversation_id = i)) as held
              from pg_catalog.unnest(v_request.deferred_conversation_ids) i) s;
    continue when pg_catalog.cardinality(v_free) = 0;
    -- computed first: Citus refuses a volatile function in an UPDATE of a distributed table
    v_counts := private.erasure_redact(new.company_id, v_free);
    -- (and constants, not CASE over functions, which Citus refuses there too)
    v_status := case when pg_catalog.cardinality(v_left) = 0 then 'done' else 'deferred' end;
    v_done_at := case when v_status = 'done' then pg_catalog.now() end;
    update private.erasure_ledger l
       set erased = private.erasure_add_counts(l.erased, v_counts),
           deferred_conversation_ids = v_left,
           status = v_status,
           completed_at = v_done_at
     where l.company_id = new.company_id and l.id = v_request.id;
  end loop;
  return null;
end
$$;
comment on function private.erasure_on_hold_release() is
  'Trigger (after a legal hold is released): carries out the deferred part of every open erasure request of the company whose conversations no hold covers any more (private.erasure_redact), in the releasing transaction, as the releasing role (service_role or the owner: nobody else may update a hold); a request is done when no conversation is left.';
revoke execute on function private.erasure_on_hold_release() from public, anon, authenticated;

create trigger legal_holds_erasure_release
  after update of released_at on public.legal_holds
  for each row when (old.released_at is null and new.released_at is not null)
  execute function private.erasure_on_hold_release();
comment on trigger legal_holds_erasure_release on public.legal_holds is
  'A released hold lets the erasures it deferred run (private.erasure_on_hold_release).';
