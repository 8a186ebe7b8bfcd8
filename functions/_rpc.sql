{#- The note in the COMMENT of a security definer RPC that stays in public on purpose:
    `neurant-db doctor` (definer.exposed, Supabase's advisor: authenticated_security_definer_
    function_executable) reports a definer function the Data API serves to anon or
    authenticated as an error unless its COMMENT says why. Append it to the comment's
    string: comment on function public.f(...) is '...'{{ exposed_rpc() }}; -#}
{% macro exposed_rpc() %}
  ' doctor: allow definer.exposed an RPC of the API (docs/services.md, section 8): it runs as its owner to write past RLS, and checks the caller''s company and role itself'
{%- endmacro %}
