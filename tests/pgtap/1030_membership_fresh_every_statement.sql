-- rule: membership-fresh-every-statement (docs/rules.md)
-- A change of membership shows on the member's next statement, whatever its token
-- still says: the policies read the membership once per statement (functions/0300),
-- never from the token or a cache, and an operador's visible chatbots are rewritten in
-- the transaction of the change (functions/1300). Demoted, deactivated and removed
-- members lose their access; assigned, unassigned and newly created chatbots show at once.
begin;
select plan(10);

-- Freshness of the visible chatbots (issue 11: private.chatbot_visibility, written by
-- triggers in the transaction of the change): every change shows on the next statement --
select tests.act_as_superuser();
insert into public.chatbot_operators (company_id, chatbot_id, user_id)
values (tests.company_id('A'), tests.chatbot_id('A', 'unassigned'), tests.user_id('A', 'operador'));
select tests.act_as('A', 'operador');
select ok((select count(*) from public.conversations where chatbot_id = tests.chatbot_id('A', 'unassigned')) > 0,
    'an operador assigned to a chatbot reads its conversations on its next statement');
select tests.act_as_superuser();
delete from public.chatbot_operators
 where company_id = tests.company_id('A') and chatbot_id = tests.chatbot_id('A', 'unassigned')
   and user_id = tests.user_id('A', 'operador');
select tests.act_as('A', 'operador');
select is((select count(*)::int from public.conversations where chatbot_id = tests.chatbot_id('A', 'unassigned')), 0,
    'an operador unassigned from a chatbot no longer reads its conversations on its next statement');
select tests.act_as_superuser();
insert into public.chatbots (company_id, id, name, system_prompt)
values (tests.company_id('A'), tests.new_id('chatbot', 'A', 'fresh'), 'fresh bot', 'You are helpful.');
insert into public.conversations (company_id, chatbot_id, end_user_id, channel)
values (tests.company_id('A'), tests.chatbot_id('A', 'fresh'), 'fresh-user', 'web');
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.conversations where chatbot_id = tests.chatbot_id('A', 'fresh')), 1,
    'a supervisor reads the conversations of a chatbot created after its membership, on its next statement');
select tests.act_as('A', 'operador');
select is((select count(*)::int from public.conversations where chatbot_id = tests.chatbot_id('A', 'fresh')), 0,
    'a new chatbot is not visible to an operador who is not assigned to it');
select tests.act_as_superuser();
select tests.remove_members(array[tests.user_id('A', 'operador')]);
select tests.act_as_auth(tests.auth_id('A', 'operador')); -- the identity is still signed in
select is((select count(*)::int from public.conversations) + (select count(*)::int from public.messages), 0,
    'a removed operador reads no conversation or message on its next statement');
select tests.act_as_superuser();
-- Profile citus has no such table (functions/1300): nothing to keep there.
select is_empty(case when pg_catalog.to_regclass('private.chatbot_visibility') is null then 'select 1 where false'
  else format($$ select 1 from private.chatbot_visibility where user_id = %L $$, tests.user_id('A', 'operador')) end,
  'a removed member keeps no visible-chatbots row');

-- Freshness of the membership read by the policies (issue 11: one lookup per statement,
-- never a cache): a demoted or removed member loses access on its next statement ----------
select tests.act_as('A', 'supervisor');
select ok((select count(*) from public.conversations) > 0 and (select count(*) from public.messages) > 0,
    'a supervisor reads the conversations and messages of its company');
select tests.act_as_superuser();
select tests.set_member(tests.user_id('A', 'supervisor'), 'operador');
select tests.act_as('A', 'supervisor');
select is((select count(*)::int from public.conversations) + (select count(*)::int from public.messages), 0,
    'a supervisor demoted to operador (no chatbot assigned) reads no conversation or message on its next statement');
select tests.act_as('A', 'administrador');
select ok((select count(*) from public.messages) > 0, 'an administrador reads the messages of its company');
select tests.act_as_superuser();
select tests.set_member(tests.user_id('A', 'administrador'), p_is_active => false);
select tests.act_as('A', 'administrador');
select is((select count(*)::int from public.conversations) + (select count(*)::int from public.messages)
          + (select count(*)::int from public.hitl_escalations), 0,
    'a deactivated member reads nothing on its next statement');

select * from finish();
rollback;
