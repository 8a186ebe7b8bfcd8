-- Why: undoes 1200_create_chatbot_from_template.
drop function public.create_chatbot_from_template(text, text);
