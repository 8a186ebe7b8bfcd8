-- Why: undoes 1300_chatbot_access_helpers.sql.
drop function public.get_visible_chatbot_ids();
drop function public.get_assigned_chatbot_ids();
