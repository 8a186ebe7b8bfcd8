-- Undo 0220_subscription_plans.
drop table public.subscription_plans;
