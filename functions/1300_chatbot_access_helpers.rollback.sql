-- Why: undoes 1035_chatbot_access_helpers.
drop function public.get_assigned_chatbot_ids();
