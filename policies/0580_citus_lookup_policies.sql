-- neurant: profile citus
-- Profile citus only: the policies of private.memberships (schema/0150). No member reads
-- or writes it directly (no grant either); the context helpers read it as definer.
create policy select_none on private.memberships
  for select to authenticated
  using (false);
comment on policy select_none on private.memberships is
  'No member reads the copy directly (no grant either): the context helpers read it as definer.';
{% from 'policies/_read_only.sql' import read_only_when_inactive %}
{{ read_only_when_inactive('private.memberships') }}
