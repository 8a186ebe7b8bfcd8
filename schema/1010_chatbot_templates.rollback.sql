-- Why: undoes 1010_chatbot_templates.
drop table public.chatbot_templates;
