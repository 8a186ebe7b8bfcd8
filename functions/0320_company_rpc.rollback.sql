-- Why: undoes 0320_company_rpc.sql.
drop function public.transfer_ownership(uuid);
drop function public.create_company_with_owner(text, text, text, text);
