-- Why: undoes 0100_subscription_plans.sql.
drop table public.subscription_plans;
