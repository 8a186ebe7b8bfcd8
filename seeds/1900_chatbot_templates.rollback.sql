-- Why: undoes 1900_chatbot_templates.sql. Chatbots created from these presets keep their
-- copied settings; their template_code becomes null (chatbots_template_fkey on delete set null).
delete from public.chatbot_templates
  where code in ('customer_support', 'ecommerce', 'healthcare_appointments', 'real_estate', 'restaurant_reservations');
