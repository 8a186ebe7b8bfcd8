-- neurant: profile citus
-- Profile citus only (the other profiles do not list this migration): where every table
-- lives on a Citus cluster, and the step that puts it there (docs/scale-out.md).
--
-- private.citus_layout is the plan: one row per table, in the order of distribution
-- (reference tables first, then the tenant root companies, then every tenant table
-- distributed by company_id and co-located with companies, referenced tables before
-- the tables whose foreign keys point at them). `neurant-db citus plan` prints it and
-- `neurant-db doctor --profile citus` checks the schema against it.
--
-- The step runs last, after every table, trigger, policy and seed exists (the order of
-- docs/scale-out.md for moving an existing database). On plain PostgreSQL (no citus
-- extension: no pg_dist_partition nor Citus's functions) it only says so in a NOTICE, so
-- CI migrates this profile everywhere.
{% from 'policies/_rls.sql' import rls -%}
create table private.citus_layout (
  relation regclass not null,
  placement text not null,
  distribution_column name,
  colocate_with regclass,
  position integer not null,
  constraint citus_layout_pkey primary key (relation),
  constraint citus_layout_position_key unique (position),
  constraint citus_layout_placement_check check (placement in ('reference', 'distributed')),
  constraint citus_layout_distribution_column_check
    check ((placement = 'distributed') = (distribution_column is not null)),
  constraint citus_layout_colocate_with_check check (colocate_with is null or placement = 'distributed')
);
comment on table private.citus_layout is
  'Profile citus: the placement of every table on a Citus cluster, in the order seeds/3990_citus_distribution.sql distributes them (reference tables, then companies by id, then the tenant tables by company_id co-located with companies). Read by neurant-db citus plan and doctor --profile citus.';
comment on column private.citus_layout.relation is 'The table.';
comment on column private.citus_layout.placement is 'reference (one copy on every node) or distributed (hash-sharded by distribution_column).';
comment on column private.citus_layout.distribution_column is 'The column a distributed table is sharded by (company_id; id for companies); null for reference tables.';
comment on column private.citus_layout.colocate_with is 'The table a distributed table is co-located with (public.companies), so that a company''s rows of every table share a node; null for companies itself and for reference tables.';
comment on column private.citus_layout.position is 'Order of distribution (1 first): a table comes after every table its foreign keys reference.';
{{ rls('private.citus_layout') }}
create policy select_none on private.citus_layout
  for select to authenticated
  using (false);
comment on policy select_none on private.citus_layout is
  'Members never read the layout (no grant either); service_role and the migration owner do.';

-- One row per table of schema/_tables.toml that this profile creates, in its order.
insert into private.citus_layout (position, relation, placement, distribution_column, colocate_with) values
{%- for entry in tables.on('citus') %}
  ({{ entry.position }}, '{{ entry.name }}'::regclass, '{{ entry.citus }}', {{ "'%s'" % entry.distribution_column if entry.distribution_column else 'null' }},
   {{- " 'public.companies'::regclass" if entry.citus == 'distributed' and entry.scope != 'root' else ' null' }}){{ ',' if not loop.last else ';' }}
{%- endfor %}

-- The distribution step: idempotent (a table already placed as planned is skipped), and
-- a table Citus already holds differently stops the migration with what to do.
create function private.citus_distribute() returns integer
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_rows private.citus_layout[];
  v_row private.citus_layout;
  v_current text;
  v_column name;
  v_done integer := 0;
  v_fkeys text[];
  v_fkey text[];
  v_triggers text[];
  v_i integer;
  v_function regprocedure;
begin
  -- Citus is what this step calls: its placement catalog and its two functions (found by
  -- name, not through pg_extension, so tests/test_citus_distribution.py can run every
  -- path below on plain PostgreSQL against stand-ins of the same names and shapes).
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is null
     or (select pg_catalog.count(distinct p.proname) from pg_catalog.pg_proc p
          where p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
            and p.proname in ('create_reference_table', 'create_distributed_table', 'column_to_column_name')) < 3 then
    raise notice 'citus not installed (no pg_dist_partition, create_reference_table, create_distributed_table): nothing distributed (private.citus_layout lists % tables)',
      (select pg_catalog.count(*) from private.citus_layout);
    return 0;
  end if;
  -- Tables with triggers are refused without it (set for later sessions below).
  perform pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  -- Foreign keys to reference tables created in one transaction need sequential shard DDL.
  perform pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
  -- Read the plan first: the layout table itself is placed last, with no cursor open on it.
  select pg_catalog.array_agg(l order by l.position) into v_rows from private.citus_layout l;
  -- The foreign keys between the tables still to place go while they are placed and come
  -- back afterwards: Citus turns every local table linked by a foreign key to a new
  -- reference table into a Citus local table (auth.users -> companies, users: issue 19),
  -- which can then no longer be distributed. Re-added on the placed tables, Citus creates
  -- them on every shard (co-located, or to a reference table).
  -- One row per key: table, name, definition, comment.
  select pg_catalog.array_agg(array[f.tbl, f.conname, f.def, f.note] order by f.conname) into v_fkeys
    from (select c.conrelid::regclass::text as tbl, c.conname::text, pg_catalog.pg_get_constraintdef(c.oid) as def,
                 pg_catalog.obj_description(c.oid, 'pg_constraint') as note
            from pg_catalog.pg_constraint c
           where c.contype = 'f'
             and (c.conrelid in (select l.relation from private.citus_layout l)
                  or c.confrelid in (select l.relation from private.citus_layout l))
             and (select pg_catalog.count(*) from pg_catalog.pg_dist_partition p
                   where p.logicalrelid in (c.conrelid, c.confrelid)) < 2) f;
  foreach v_fkey slice 1 in array coalesce(v_fkeys, '{}') loop
    execute pg_catalog.format('alter table %s drop constraint %I', v_fkey[1], v_fkey[2]);
  end loop;
  foreach v_row in array v_rows loop
    execute 'select case when p.partmethod = ''h'' then ''distributed''
                         when p.partmethod = ''n'' and p.repmodel = ''t'' then ''reference''
                         else ''local'' end,
                    case when p.partmethod = ''h'' then pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)::name end
               from pg_catalog.pg_dist_partition p where p.logicalrelid = $1'
       into v_current, v_column using v_row.relation;
    if v_current is not null then
      if v_current = v_row.placement and v_column is not distinct from v_row.distribution_column then
        continue;
      end if;
      raise exception using
        errcode = '55000',
        message = pg_catalog.format('table %s is already a %s table%s on this cluster, the layout says %s%s',
          v_row.relation, v_current, coalesce(' by ' || v_column, ''), v_row.placement,
          coalesce(' by ' || v_row.distribution_column, '')),
        hint = 'Undistribute it (select undistribute_table(...)) and migrate again, or fix private.citus_layout.';
    end if;
    -- Citus copies a filled table's rows into its new shards with COPY, which fires the
    -- shards' row triggers (audit, quotas, usage, the tenant guard: issue 19, moving a
    -- filled database): the table's enabled triggers are off while it is placed (Citus
    -- creates the shards' triggers in the same state) and back on, as they were, after.
    select pg_catalog.array_agg(array[t.tgname::text, t.tgenabled::text] order by t.tgname) into v_triggers
      from pg_catalog.pg_trigger t
     where t.tgrelid = v_row.relation and not t.tgisinternal and t.tgenabled <> 'D';
    for v_i in 1 .. coalesce(pg_catalog.array_length(v_triggers, 1), 0) loop
      execute pg_catalog.format('alter table %s disable trigger %I', v_row.relation, v_triggers[v_i][1]);
    end loop;
    if v_row.placement = 'reference' then
      execute 'select pg_catalog.create_reference_table($1)' using v_row.relation;
    else
      execute 'select pg_catalog.create_distributed_table($1, $2, colocate_with => $3)'
        using v_row.relation, v_row.distribution_column::text,
              coalesce(v_row.colocate_with::text, 'none');
    end if;
    for v_i in 1 .. coalesce(pg_catalog.array_length(v_triggers, 1), 0) loop
      execute pg_catalog.format('alter table %s %s trigger %I', v_row.relation,
        case v_triggers[v_i][2] when 'A' then 'enable always' when 'R' then 'enable replica' else 'enable' end,
        v_triggers[v_i][1]);
    end loop;
    v_done := v_done + 1;
  end loop;
  foreach v_fkey slice 1 in array coalesce(v_fkeys, '{}') loop
    execute pg_catalog.format('alter table %s add constraint %I %s', v_fkey[1], v_fkey[2], v_fkey[3]);
    if v_fkey[4] is not null then
      execute pg_catalog.format('comment on constraint %I on %s is %L', v_fkey[2], v_fkey[1], v_fkey[4]);
    end if;
  end loop;
  -- The delegated RPCs (functions/_rpc.sql, delegated_rpc): each public RPC of that shape
  -- is a security invoker handing its call to the security definer private.<same name>
  -- (p_company_id uuid, ...). Distributed by p_company_id, co-located with companies and
  -- force-delegated, Citus runs such a call on the worker holding the company, over the
  -- caller's own connection, even inside a transaction block (docs/scale-out.md, "Definer
  -- RPCs on Citus"). Found in the catalog, so the macro stays the one list.
  if pg_catalog.to_regclass('pg_catalog.pg_dist_object') is not null
     and exists (select 1 from pg_catalog.pg_proc p
                  where p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
                    and p.proname = 'create_distributed_function') then
    for v_function in
      select d.oid::regprocedure
        from pg_catalog.pg_proc d
        join pg_catalog.pg_proc i on i.proname = d.proname
       where d.pronamespace = 'private'::pg_catalog.regnamespace and d.prosecdef
         and (d.proargnames)[1] = 'p_company_id' and d.proargtypes[0] = 'uuid'::pg_catalog.regtype
         and i.pronamespace = 'public'::pg_catalog.regnamespace and not i.prosecdef
       order by d.proname
    loop
      execute 'select pg_catalog.count(*) from pg_catalog.pg_dist_object o
                where o.classid = ''pg_catalog.pg_proc''::pg_catalog.regclass and o.objid = $1
                  and o.distribution_argument_index = 0 and o.force_delegation'
         into v_i using v_function;
      if v_i = 0 then
        execute 'select pg_catalog.create_distributed_function($1, $2, colocate_with => $3, force_delegation => true)'
          using v_function, 'p_company_id', 'public.companies';
      end if;
    end loop;
  end if;
  raise notice 'citus: % table(s) distributed as private.citus_layout says', v_done;
  return v_done;
end
$$;
comment on function private.citus_distribute() is
  'Profile citus: places every table of private.citus_layout in position order (create_reference_table / create_distributed_table ... colocate_with); skips tables already placed as planned, raises 55000 for a table placed otherwise; a table''s triggers are off while Citus copies its rows into the shards; then distributes the definer body of each delegated RPC (private.<name>(p_company_id uuid, ...) behind the invoker public.<name>) by p_company_id, co-located with companies, force_delegation; a NOTICE and 0 on a server without Citus (no pg_catalog.pg_dist_partition, create_reference_table, create_distributed_table, column_to_column_name). Returns how many tables it placed.';
revoke execute on function private.citus_distribute() from public, anon, authenticated;

-- Citus refuses to distribute a table with triggers, or to create a trigger on a
-- distributed one, unless citus.enable_unsafe_triggers is on: set for every later session
-- of this database (the migrations after this one), also on plain PostgreSQL, where it is
-- an inert setting that `doctor --profile citus` can see.
do $$
begin
  execute pg_catalog.format('alter database %I set citus.enable_unsafe_triggers = on',
    pg_catalog.current_database());
exception when insufficient_privilege then
  raise notice using
    message = pg_catalog.format('citus.enable_unsafe_triggers not set for database %I: only its owner may',
      pg_catalog.current_database()),
    hint = 'Have the database owner run: alter database <name> set citus.enable_unsafe_triggers = on.';
end
$$;

select private.citus_distribute();

-- Citus's own views in the exposed schema (public.citus_tables, public.citus_schemas: the
-- name, owner and size of every distributed table) are readable by PUBLIC as the extension
-- makes them: the API would show them to anon and every member. Only the backend and the
-- owner read them (issue 19: found by tests/pgtap/0010 on the cluster).
do $$
declare
  v_view regclass;
begin
  foreach v_view in array array[pg_catalog.to_regclass('public.citus_tables'),
                                pg_catalog.to_regclass('public.citus_schemas')] loop
    if v_view is not null then
      execute pg_catalog.format('revoke all on %s from public, anon, authenticated', v_view);
    end if;
  end loop;
end
$$;
