-- Why: undoes 1300_chatbot_access_helpers.sql.
drop function private.get_visible_chatbot_ids();
{% if profile != 'citus' -%}
drop trigger chatbot_operators_chatbot_visibility on public.chatbot_operators;
drop trigger chatbots_chatbot_visibility on public.chatbots;
drop trigger users_chatbot_visibility on public.users;
drop function private.chatbot_visibility_follow();
drop function private.refresh_chatbot_visibility(uuid, uuid);
drop table private.chatbot_visibility;
{% endif -%}
drop function private.get_assigned_chatbot_ids();
{% if profile == 'citus' -%}
drop function private.chatbot_ids_in_shard(boolean);
drop function private.read_chatbot_ids(boolean);
{% endif -%}
