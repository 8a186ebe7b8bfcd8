-- Undo 0330_company_rpc.
drop function public.transfer_ownership(uuid);
drop function public.create_company_with_owner(text, text, text, text);
