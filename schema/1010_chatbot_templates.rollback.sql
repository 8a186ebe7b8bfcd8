-- Why: undoes 1010_chatbot_templates.sql.
drop table public.chatbot_templates;
