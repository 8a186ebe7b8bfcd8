-- Why: undoes 0010_auth_surface.sql: drop the auth schema objects created for profile
-- 'vanilla'. The roles anon / authenticated / service_role are cluster-wide and
-- may be used by other databases of the server, so they are deliberately kept.
{% if profile in ('vanilla', 'citus') %}
drop function auth.jwt();
drop function auth.email();
drop function auth.role();
drop function auth.uid();
drop table auth.users;
drop schema auth;
{% else %}
-- profile '{{ profile }}': 0100 created nothing, nothing to undo.
{% endif %}
