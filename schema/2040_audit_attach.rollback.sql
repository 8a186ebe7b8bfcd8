-- Why: undoes 2040_audit_attach.sql (detaches the audit triggers).
drop trigger if exists documents_audit on public.documents;
drop trigger if exists integration_credentials_audit on private.integration_credentials;
drop trigger if exists integrations_audit on public.integrations;
drop trigger if exists chatbot_operators_audit on public.chatbot_operators;
drop trigger if exists chatbots_audit on public.chatbots;
drop trigger if exists user_invitations_audit on public.user_invitations;
drop trigger if exists users_audit on public.users;
drop trigger if exists companies_audit on public.companies;
