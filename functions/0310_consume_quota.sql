-- Plan limits without races: every live counter of public.companies is moved
-- by one conditional UPDATE that checks the plan limit and locks the company
-- row, so concurrent transactions serialise on it and the counter stays exact.
create function private.consume_quota(p_company_id uuid, p_counter text, p_delta bigint) returns bigint
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_limit_column text;
  v_what text;
  v_hint text;
  v_new bigint;
  v_plan text;
  v_used bigint;
  v_limit bigint;
begin
  case p_counter
    when 'current_user_count' then
      v_limit_column := 'max_users'; v_what := 'user'; v_hint := 'upgrade the plan or remove a user';
    when 'current_chatbot_count' then
      v_limit_column := 'max_chatbots'; v_what := 'chatbot'; v_hint := 'upgrade the plan or remove a chatbot';
    when 'current_document_count' then
      v_limit_column := 'max_documents'; v_what := 'document'; v_hint := 'upgrade the plan or remove a document';
    when 'current_storage_bytes' then
      v_limit_column := 'max_storage_bytes'; v_what := 'storage'; v_hint := 'upgrade the plan or remove documents to free storage';
    when 'current_integration_count' then
      v_limit_column := 'max_integrations'; v_what := 'integration'; v_hint := 'upgrade the plan or remove an integration';
    when 'current_pending_invitation_count' then
      v_limit_column := 'max_pending_invitations'; v_what := 'pending invitation'; v_hint := 'upgrade the plan or revoke a pending invitation';
    else
      raise exception using
        errcode = '22023',
        message = format('unknown quota counter %L', p_counter),
        hint = 'Use one of current_user_count, current_chatbot_count, current_document_count, current_storage_bytes, current_integration_count, current_pending_invitation_count.';
  end case;
  if p_company_id is null or p_delta is null then
    raise exception using errcode = '22023', message = 'consume_quota needs a company id and a delta';
  end if;

  if p_delta <= 0 then
    -- Releasing never fails; a missing company (deleted in this statement) is a no-op.
    execute format('update public.companies set %1$I = greatest(%1$I + $2, 0) where id = $1 returning %1$I', p_counter)
       into v_new using p_company_id, p_delta;
    return v_new;
  end if;
{% if profile == 'citus' %}
  -- Citus: the company row locked first (by its key: one shard), then its plan's limit
  -- read alone, then the counter moved by the key. No statement joins the distributed
  -- companies with the reference subscription_plans: a delegated RPC refuses that shape
  -- (docs/scale-out.md, "Definer RPCs"). The row lock serialises concurrent callers as the
  -- conditional UPDATE does elsewhere.
  execute format('select c.subscription_plan, c.%1$I from public.companies c where c.id = $1 for update', p_counter)
     into v_plan, v_used using p_company_id;
  if v_plan is not null then
    execute format('select p.%1$I from public.subscription_plans p where p.code = $1', v_limit_column)
       into v_limit using v_plan;
    if v_limit is null or v_used + p_delta <= v_limit then
      execute format('update public.companies c set %1$I = c.%1$I + $2 where c.id = $1 returning c.%1$I', p_counter)
         into v_new using p_company_id, p_delta;
      return v_new;
    end if;
  end if;
{%- else %}
  execute format(
    'update public.companies c set %1$I = c.%1$I + $2'
    ' from public.subscription_plans p'
    ' where c.id = $1 and p.code = c.subscription_plan'
    ' and (p.%2$I is null or c.%1$I + $2 <= p.%2$I)'
    ' returning c.%1$I', p_counter, v_limit_column)
     into v_new using p_company_id, p_delta;
  if v_new is not null then
    return v_new;
  end if;

  execute format(
    'select c.subscription_plan, c.%1$I, p.%2$I from public.companies c'
    ' join public.subscription_plans p on p.code = c.subscription_plan where c.id = $1', p_counter, v_limit_column)
     into v_plan, v_used, v_limit using p_company_id;
{%- endif %}
  if v_plan is null then
    raise exception using
      errcode = '23503',
      message = format('company %s does not exist', p_company_id);
  end if;
  raise exception using
    errcode = 'NA001',
    message = case when p_delta = 1
      then format('%s limit reached for plan %s: %s of %s', v_what, v_plan, v_used, v_limit)
      else format('%s limit reached for plan %s: %s + %s exceeds %s', v_what, v_plan, v_used, p_delta, v_limit)
    end,
    hint = v_hint;
end
$$;
comment on function private.consume_quota(uuid, text, bigint) is
  'Moves a live counter of public.companies by p_delta; a positive delta fails with NA001 when the plan limit (current_user_count->max_users, current_chatbot_count->max_chatbots, current_document_count->max_documents, current_storage_bytes->max_storage_bytes, current_integration_count->max_integrations, current_pending_invitation_count->max_pending_invitations; null = unlimited) would be exceeded. A delta <= 0 never fails (clamped at 0; no-op if the company is gone). Locks the company row until commit. Returns the new value. Security invoker: call it from security definer trigger functions.';
revoke execute on function private.consume_quota(uuid, text, bigint) from public;
