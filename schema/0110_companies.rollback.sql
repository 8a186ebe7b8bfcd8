-- Why: undoes 0110_companies.sql.
drop table public.companies;
