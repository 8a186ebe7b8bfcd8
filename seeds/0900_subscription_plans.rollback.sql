-- Why: undoes 0900_subscription_plans.sql: remove the seeded plans (fails, on purpose,
-- while a company is still on one of them).
delete from public.subscription_plans where code in ('free', 'starter', 'professional', 'enterprise');
