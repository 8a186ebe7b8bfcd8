{#- The note in the COMMENT of a security definer RPC that stays in public on purpose:
    `neurant-db doctor` (definer.exposed, Supabase's advisor: authenticated_security_definer_
    function_executable) reports a definer function the Data API serves to anon or
    authenticated as an error unless its COMMENT says why. Append it to the comment's
    string: comment on function public.f(...) is '...'{{ exposed_rpc() }}; -#}
{% macro exposed_rpc() %}
  ' doctor: allow definer.exposed an RPC of the API (docs/services.md, section 8): it runs as its owner to write past RLS, and checks the caller''s company and role itself'
{%- endmacro %}

{#- Profile citus: the public RPC `name` as a security invoker that hands its call to the
    security definer private.`name`(p_company_id uuid, <its arguments>), distributed by
    seeds/3990 with force_delegation, so Citus runs it on the worker holding the caller's
    company over the caller's own connection: a member's direct writes and the RPC then mix
    in one request (docs/scale-out.md, "Definer RPCs on Citus"). `params`: the public
    parameter list; `args`: (expression, type) of each argument after the company;
    `returns`: the public return type; `kind`: 'table' (returns table), 'scalar' or 'void'. -#}
{% macro delegated_rpc(name, params, args, returns, kind) -%}
create function public.{{ name }}({{ params }})
returns {{ returns }}
  language plpgsql volatile security invoker
  set search_path = pg_catalog, pg_temp
as $$
{%- if kind == 'scalar' %}
declare
  v_result {{ returns }};
{%- endif %}
begin
  -- Every argument a literal: Citus delegates a call only when its distribution argument
  -- is a constant (function_call_delegation.c); the nil uuid for a caller without a company,
  -- whom private.{{ name }} refuses like any other outsider.
  {{ 'return query ' if kind == 'table' }}execute pg_catalog.format('select * from private.{{ name }}(%L::uuid{% for a in args %}, %L::{{ a[1] }}{% endfor %})',
    coalesce(private.get_user_company_id(), '00000000-0000-0000-0000-000000000000'::uuid){% for a in args %}, {{ a[0] }}{% endfor %}){{ ' into v_result' if kind == 'scalar' }};
{%- if kind == 'scalar' %}
  return v_result;
{%- endif %}
end
$$;
{%- endmacro %}

{#- The note appended to the COMMENT of a public RPC that delegated_rpc makes an invoker on
    profile citus (in place of exposed_rpc: it is no definer there). -#}
{% macro delegated_note(name) %}
  ' Profile citus: security invoker; the security definer private.{{ name }} runs on the worker holding the caller''s company (docs/scale-out.md, "Definer RPCs on Citus").'
{%- endmacro %}
