-- Why: undoes 1310_create_chatbot_from_template.sql.
drop function public.create_chatbot_from_template(text, text);
