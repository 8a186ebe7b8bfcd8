-- Why: reference data - the industry presets offered when a company creates a chatbot
-- (seed section 2, "Chatbot Templates: presets específicos por industria"). Idempotent:
-- re-running refreshes the presets without touching chatbots created from them.

insert into public.chatbot_templates
  (code, name, industry, description, system_prompt, default_channels,
   hitl_keywords, hitl_human_request_phrases, hitl_max_bot_turns, hitl_low_rating_threshold, sort_order)
values
  ('customer_support', 'Customer support', 'General',
   'Answers frequently asked questions from your knowledge base and hands over to an agent when it cannot help.',
   'You are a friendly, concise customer support assistant for the company. Answer only from the provided knowledge base. '
   'If you are not sure, say so and offer to connect the customer with a human agent. Never invent policies, prices or deadlines.',
   '{web,whatsapp,email}',
   '{complaint,refund,cancel my account,lawyer,legal action,reclamo,reembolso,queja}',
   '{"talk to a human","speak to a human","real person","human agent","talk to an agent","hablar con una persona","hablar con un humano","agente humano","persona real"}',
   6, 2, 10),
  ('ecommerce', 'E-commerce assistant', 'E-commerce / Retail',
   'Helps shoppers find products, track orders and understand shipping and return policies.',
   'You are a shopping assistant for an online store. Help customers find products, explain shipping, returns and payment options, '
   'and give order status only from data provided by the tools. Do not promise discounts or delivery dates you cannot verify.',
   '{web,whatsapp,instagram,messenger}',
   '{refund,chargeback,damaged,wrong item,never arrived,fraud,reembolso,producto dañado,no llegó}',
   '{"talk to a human","speak to a human","real person","human agent","hablar con una persona","agente humano"}',
   5, 2, 20),
  ('healthcare_appointments', 'Healthcare appointments', 'Healthcare',
   'Books, moves and cancels appointments and answers practical questions about the clinic. Never gives medical advice.',
   'You are the appointment assistant of a healthcare clinic. You schedule, reschedule and cancel appointments and answer practical '
   'questions (opening hours, location, insurance accepted). You never give diagnoses or medical advice. If the patient describes an '
   'emergency, tell them to call the local emergency number immediately.',
   '{web,whatsapp,sms}',
   '{emergency,chest pain,can''t breathe,suicide,overdose,bleeding,emergencia,dolor de pecho,no puedo respirar}',
   '{"talk to a human","speak to a nurse","speak to a doctor","real person","hablar con una persona","hablar con un médico","hablar con la enfermera"}',
   4, 2, 30),
  ('real_estate', 'Real estate leads', 'Real estate',
   'Qualifies buyer and renter leads, answers listing questions and books viewings with an agent.',
   'You are a real estate assistant. Answer questions about listed properties using only the provided listings, qualify the lead '
   '(budget, area, timing, financing) and offer to book a viewing with an agent. Never state prices or availability not in the listings.',
   '{web,whatsapp,messenger,email}',
   '{make an offer,book a viewing,mortgage,contract,hacer una oferta,visita,hipoteca}',
   '{"talk to an agent","speak to an agent","real person","hablar con un agente","hablar con una persona"}',
   6, 2, 40),
  ('restaurant_reservations', 'Restaurant reservations', 'Hospitality',
   'Takes table reservations, shares the menu and opening hours, and flags allergy questions to staff.',
   'You are the reservation assistant of a restaurant. Take, change and cancel table reservations, share the menu and opening hours. '
   'For allergy or dietary questions, do not guarantee anything: pass the question to the staff.',
   '{web,whatsapp,instagram}',
   '{allergy,allergic,celiac,large group,event,alergia,celíaco,evento}',
   '{"talk to a human","speak to the manager","real person","hablar con una persona","hablar con el encargado"}',
   5, 2, 50)
on conflict (code) do update
  set name = excluded.name,
      industry = excluded.industry,
      description = excluded.description,
      system_prompt = excluded.system_prompt,
      default_channels = excluded.default_channels,
      hitl_keywords = excluded.hitl_keywords,
      hitl_human_request_phrases = excluded.hitl_human_request_phrases,
      hitl_max_bot_turns = excluded.hitl_max_bot_turns,
      hitl_low_rating_threshold = excluded.hitl_low_rating_threshold,
      sort_order = excluded.sort_order,
      is_active = true;
