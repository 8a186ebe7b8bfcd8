-- Undo 0230_companies.
drop table public.companies;
