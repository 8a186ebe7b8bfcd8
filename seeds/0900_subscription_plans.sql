-- Reference data: the subscription plans and their limits. Idempotent (upsert
-- by code), so re-running it resets the limits to these values.
insert into public.subscription_plans
  (code, name, description, monthly_price_cents, max_users, max_chatbots, max_pending_invitations,
   max_documents, max_storage_bytes, max_integrations, monthly_message_limit, is_public, sort_order)
values
  ('free', 'Free', 'Try NeurAnt: one chatbot, two seats.', 0,
   2, 1, 2, 20, 50::bigint * 1024 * 1024, 1, 1000, true, 10),
  ('starter', 'Starter', 'Small teams: a few chatbots and channels.', 2900,
   5, 3, 10, 200, 1::bigint * 1024 * 1024 * 1024, 3, 10000, true, 20),
  ('professional', 'Professional', 'Growing support teams with HITL.', 9900,
   25, 10, 50, 2000, 10::bigint * 1024 * 1024 * 1024, 10, 100000, true, 30),
  ('enterprise', 'Enterprise', 'Large organisations; custom terms.', null,
   1000, 100, 500, 50000, 200::bigint * 1024 * 1024 * 1024, 50, 1000000, true, 40)
on conflict (code) do update set
  name = excluded.name,
  description = excluded.description,
  monthly_price_cents = excluded.monthly_price_cents,
  max_users = excluded.max_users,
  max_chatbots = excluded.max_chatbots,
  max_pending_invitations = excluded.max_pending_invitations,
  max_documents = excluded.max_documents,
  max_storage_bytes = excluded.max_storage_bytes,
  max_integrations = excluded.max_integrations,
  monthly_message_limit = excluded.monthly_message_limit,
  is_public = excluded.is_public,
  sort_order = excluded.sort_order;
