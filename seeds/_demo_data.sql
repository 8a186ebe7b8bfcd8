-- Demo tenants for `neurant-db demo` (not a migration: underscore prefix).
-- Everything goes through the public API as the users themselves - company
-- creation, invitations, chatbots from templates, conversations, HITL - so the
-- demo exercises the same rules a client hits. Idempotent: does nothing when
-- the demo companies exist. Plain Postgres only (it writes auth.users).
do $demo$
declare
  v_company uuid;
  v_token text;
  v_bot uuid;
  v_conv uuid;
  v_owner uuid;
  v_op uuid;
  v_spec record;
begin
  if exists (select 1 from public.companies where name in ('Acme Retail', 'Clinica Sol')) then
    raise notice 'demo tenants already exist';
    return;
  end if;
  for v_spec in
    select * from (values
      ('Acme Retail', 'retail', 'starter', 'ana@acme.test', 'Ana Owner', 'ecommerce',
       'leo@acme.test', 'Leo Operador'),
      ('Clinica Sol', 'healthcare', 'professional', 'sol@clinica.test', 'Sol Owner',
       'healthcare_appointments', 'max@clinica.test', 'Max Operador')
    ) as t(name, industry, plan, owner_email, owner_name, template, op_email, op_name)
  loop
    insert into auth.users (id, email, email_confirmed_at) values (gen_random_uuid(), v_spec.owner_email, now()) returning id into v_owner;
    insert into auth.users (id, email, email_confirmed_at) values (gen_random_uuid(), v_spec.op_email, now()) returning id into v_op;

    -- the owner signs up and creates the company
    perform set_config('request.jwt.claims', json_build_object('sub', v_owner, 'role', 'authenticated',
                       'email', v_spec.owner_email)::text, true);
    set local role authenticated;
    v_company := public.create_company_with_owner(v_spec.name, v_spec.industry, 'free', v_spec.owner_name);
    reset role;
    -- signup is free; the backend (service_role) sets the paid plan after checkout
    update public.companies set subscription_plan = v_spec.plan where id = v_company;
    set local role authenticated;
    select i.token into v_token from public.create_invitation(v_spec.op_email, 'operador') i;
    v_bot := public.create_chatbot_from_template(v_spec.template, v_spec.name || ' assistant');
    reset role;

    -- the operador accepts the invitation
    perform set_config('request.jwt.claims', json_build_object('sub', v_op, 'role', 'authenticated',
                       'email', v_spec.op_email)::text, true);
    set local role authenticated;
    perform public.accept_invitation(v_token);
    reset role;

    -- the owner assigns the operador to the bot
    perform set_config('request.jwt.claims', json_build_object('sub', v_owner, 'role', 'authenticated',
                       'email', v_spec.owner_email)::text, true);
    set local role authenticated;
    insert into public.chatbot_operators (company_id, chatbot_id, user_id)
    select v_company, v_bot, u.id from public.users u where u.email = v_spec.op_email;
    reset role;

    -- the backend (service_role) records a conversation; asking for a human escalates it
    perform set_config('request.jwt.claims', '', true);
    set local role service_role;
    insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
    values (v_company, v_bot, 'customer-1', 'web') returning id into v_conv;
    insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
    values (v_company, v_conv, v_bot, 'end_user', 'Hello, where is my order?'),
           (v_company, v_conv, v_bot, 'bot', 'Let me check that for you.');
    insert into public.messages (company_id, conversation_id, chatbot_id, sender_type, content)
    values (v_company, v_conv, v_bot, 'end_user', 'I want to talk to a human please');
    reset role;
  end loop;
end
$demo$;
