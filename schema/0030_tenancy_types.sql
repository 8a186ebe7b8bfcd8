-- Closed sets of the tenancy domain as enums, so that a typo is a type error
-- and consumers get the list from the catalog.
create type public.user_role as enum ('owner', 'administrador', 'supervisor', 'operador');
comment on type public.user_role is
  'Role of a member inside their company, highest first: owner > administrador > supervisor > operador (see public.role_rank). Exactly one owner per company.';

create type public.subscription_status as enum ('trialing', 'active', 'past_due', 'canceled', 'suspended');
comment on type public.subscription_status is
  'Billing state of a company''s subscription; changed only by the backend (service_role).';

create type public.invitation_status as enum ('pending', 'accepted', 'revoked', 'expired');
comment on type public.invitation_status is
  'Life cycle of a user invitation: pending -> accepted | revoked | expired; the three outcomes are final.';
