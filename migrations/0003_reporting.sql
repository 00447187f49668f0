-- History: the change log read as intervals, reports over them, and retention.
-- Analysts and BI tools query the `reporting` schema, a stable interface; the tables in
-- `presently` stay internal and may change.

-- Each change row is also the interval it starts: the status held from `changed_at` until
-- `ended_at`, the next change of the same user (null while it lasts). Rows that start no
-- interval (a user removed, the log cleared) end where they start. Keeping the end on the row,
-- set once when the next change is appended, lets a report find the intervals overlapping a
-- day through one index instead of pairing up changes across the whole log.
alter table presently.status_changes add column ended_at timestamptz;

update presently.status_changes c
set ended_at = greatest(n.next_at, c.changed_at)
from (
  select position, lead(changed_at) over (partition by user_id order by position) as next_at
  from presently.status_changes
  where user_id is not null
) n
where c.position = n.position and n.next_at is not null;

update presently.status_changes set ended_at = changed_at where status is null;

alter table presently.status_changes
  add constraint status_changes_ends_after_start check (ended_at >= changed_at),
  add constraint status_changes_non_intervals_end check (status is not null or ended_at is not null);

-- A user's changes in order: their history, and their open interval (always the last row).
create index status_changes_user on presently.status_changes (user_id, position);
-- Intervals overlapping a period: `tstzrange(changed_at, ended_at) && tstzrange(from, to)`.
-- A GiST index answers that for any period, old or recent, in time proportional to the answer.
create index status_changes_period on presently.status_changes
  using gist (tstzrange(changed_at, ended_at));
-- Retention deletes the oldest finished rows first.
create index status_changes_ended on presently.status_changes (ended_at);

-- Appends a change, first closing the user's open interval. A change is never dated before the
-- user's previous row ends (or, for an open interval, starts), so a user's intervals never run
-- backwards or overlap, whatever order transactions that began at different times commit in.
create or replace function presently.append_change(
  p_user_id text, p_status text, p_previous text, p_changed_at timestamptz
)
returns void
language plpgsql
volatile
as $$
declare
  at timestamptz := p_changed_at;
  last presently.status_changes;
begin
  perform presently.lock_change_log();
  if p_user_id is not null then
    select * into last
    from presently.status_changes l
    where l.user_id = p_user_id
    order by l.position desc
    limit 1;
    if found and last.ended_at is null then
      at := greatest(at, last.changed_at);
      update presently.status_changes set ended_at = at where position = last.position;
    elsif found then
      at := greatest(at, last.ended_at);
    end if;
  end if;
  insert into presently.status_changes (user_id, status, previous, changed_at, ended_at)
  values (p_user_id, p_status, p_previous, at, case when p_status is null then at end);
  perform pg_notify('presently_status_changes', '');
end;
$$;

-- Day boundaries of reports are midnights in this zone (REPORT_TIMEZONE, set by the service at
-- start like the away timeout).
alter table presently.settings add column report_timezone text not null default 'UTC';

-- The newest position retention has deleted: the greatest row here. Positions after it are all
-- still in the log, so a socket may resume after any of them; one at or before it may have
-- missed changes. Pruners only insert here (and remove rows below the greatest, skipping any
-- another holds), so pruners never wait for each other.
create table presently.history_pruned (
  pruned_through bigint primary key
);

-- Deletes up to p_batch rows that ended before now() - p_keep, oldest first, and answers how
-- many. Rows another pruner holds are skipped, so instances pruning at once share the work and
-- never wait for each other. Open intervals are kept however old: they are users' present.
create function presently.prune_history(p_keep interval, p_batch integer)
returns integer
language plpgsql
volatile
as $$
declare
  pruned integer;
  newest bigint;
begin
  with old as (
    select c.position
    from presently.status_changes c
    where c.ended_at < now() - p_keep
    order by c.ended_at
    limit p_batch
    for update skip locked
  ),
  gone as (
    delete from presently.status_changes c
    using old
    where c.position = old.position
    returning c.position
  )
  select count(*), max(gone.position) into pruned, newest from gone;
  if pruned > 0 then
    insert into presently.history_pruned values (newest);
    with superseded as (
      select h.pruned_through
      from presently.history_pruned h
      where h.pruned_through < newest
      for update skip locked
    )
    delete from presently.history_pruned h
    using superseded
    where h.pruned_through = superseded.pruned_through;
  end if;
  return pruned;
end;
$$;

create schema reporting;

-- Every user's status now, as the API answers it.
create view reporting.user_status as
select user_id, status, last_ping
from presently.user_status;

-- The log as it is: one row per change, in order (see presently.status_changes).
create view reporting.status_changes as
select position, user_id, status, previous, changed_at
from presently.status_changes;

-- One row per interval a user held a status. `ended` is null while it lasts. `period` is
-- indexed: filter with `period && tstzrange(from, to)` to find the intervals overlapping a
-- period quickly.
create view reporting.status_intervals as
select
  c.position,
  c.user_id,
  c.status,
  c.changed_at as started,
  c.ended_at as ended,
  coalesce(c.ended_at, now()) - c.changed_at as duration,
  tstzrange(c.changed_at, c.ended_at) as period
from presently.status_changes c
where c.status is not null;

-- The zone reports use: the one asked for, or REPORT_TIMEZONE.
create function reporting.report_zone(p_zone text default null)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(p_zone, (select report_timezone from presently.settings), 'UTC');
$$;

-- Seconds each user spent available, busy and away per day between p_from and p_to, days
-- starting at midnight in p_zone (default REPORT_TIMEZONE). Intervals are cut at p_from, p_to,
-- now() and every midnight; only time inside [p_from, p_to) counts. p_user_id: that user only.
-- Security definer so that the reporting role, which may read nothing in `presently`, can run
-- it.
create function reporting.activity(
  p_from timestamptz, p_to timestamptz, p_zone text default null, p_user_id text default null
)
returns table (
  user_id text,
  day date,
  available_seconds double precision,
  busy_seconds double precision,
  away_seconds double precision
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
-- A day of ten million log rows is about a hundred thousand intervals to sum: in memory.
set work_mem = '64MB'
as $$
  -- Materialized, both: the zone is looked up once (not per row), and the intervals of the
  -- period are fetched through the period index before they are split, whatever the planner
  -- guesses about how many days each one spans.
  with zone as materialized (
    select reporting.report_zone(p_zone) as name
  ),
  pieces as materialized (
    select c.user_id, c.status,
           greatest(c.changed_at, p_from) as started,
           least(coalesce(c.ended_at, now()), p_to) as ended
    from presently.status_changes c
    where c.status is not null
      and tstzrange(c.changed_at, c.ended_at) && tstzrange(p_from, p_to)
      and (p_user_id is null or c.user_id = p_user_id)
  ),
  by_day as (
    select p.user_id, p.status, d.midnight::date as day,
           least(p.ended, (d.midnight + interval '1 day') at time zone z.name)
             - greatest(p.started, d.midnight at time zone z.name) as spent
    from pieces p
    cross join zone z
    cross join lateral generate_series(
      (p.started at time zone z.name)::date::timestamp,
      (p.ended at time zone z.name)::date::timestamp,
      interval '1 day'
    ) as d(midnight)
    where p.ended > p.started
  )
  select
    b.user_id,
    b.day,
    coalesce(sum(extract(epoch from b.spent)) filter (where b.status = 'available'), 0)::float8,
    coalesce(sum(extract(epoch from b.spent)) filter (where b.status = 'busy'), 0)::float8,
    coalesce(sum(extract(epoch from b.spent)) filter (where b.status = 'away'), 0)::float8
  from by_day b
  where b.spent > interval '0'
  group by b.user_id, b.day
  order by b.day, b.user_id;
$$;

-- Per hour between p_from and p_to (hours of p_zone, which matters for zones off by a half
-- hour): how many users were online (available or busy) at some moment of the hour, and the
-- most that were online at once. Hours after now() are not reported.
create function reporting.concurrency(
  p_from timestamptz, p_to timestamptz, p_zone text default null
)
returns table (hour timestamptz, online_users bigint, peak_online bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
set work_mem = '64MB'
as $$
  -- Materialized for the same reasons as in reporting.activity.
  with zone as materialized (
    select reporting.report_zone(p_zone) as name, least(p_to, now()) as until
  ),
  online as materialized (
    select c.user_id,
           greatest(c.changed_at, p_from) as started,
           least(coalesce(c.ended_at, now()), p_to) as ended
    from presently.status_changes c
    where c.status in ('available', 'busy')
      and tstzrange(c.changed_at, c.ended_at) && tstzrange(p_from, p_to)
  ),
  hours as (
    select h as hour
    from zone z
    cross join lateral generate_series(
      -- Over the whole history, from the first interval on.
      date_trunc('hour',
        case when p_from = '-infinity' then (select min(o.started) from online o) else p_from end,
        z.name),
      z.until,
      interval '1 hour'
    ) as h
    where h < z.until
  ),
  -- Users online at some moment of each hour.
  present as (
    select h.hour, count(distinct o.user_id) as online_users
    from online o
    cross join zone z
    cross join lateral generate_series(
      date_trunc('hour', o.started, z.name),
      o.ended - interval '1 microsecond',
      interval '1 hour'
    ) as h(hour)
    where o.ended > o.started
    group by h.hour
  ),
  -- How many are online after each moment something changes: +1 when an interval starts, -1
  -- when it ends, and a mark at each hour's start so that every hour has a value.
  marks as (
    select started as at, 1 as delta from online where ended > started
    union all
    select ended, -1 from online where ended > started
    union all
    select hour, 0 from hours
  ),
  running as (
    select at, sum(sum(delta)) over (order by at) as online
    from marks
    group by at
  ),
  peaks as (
    select date_trunc('hour', r.at, z.name) as hour, max(r.online) as peak_online
    from running r
    cross join zone z
    where r.at < z.until
    group by 1
  )
  select h.hour, coalesce(p.online_users, 0), coalesce(k.peak_online, 0)::bigint
  from hours h
  left join present p on p.hour = h.hour
  left join peaks k on k.hour = h.hour
  order by h.hour;
$$;

-- The same reports over the whole history, for tools that only read views.
create view reporting.daily_activity as
select * from reporting.activity('-infinity', 'infinity');

create view reporting.hourly_concurrency as
select * from reporting.concurrency('-infinity', 'infinity');

revoke execute on all functions in schema reporting from public;

-- A role that may read `reporting` and nothing else, for analysts and BI tools: grant it to a
-- login role of theirs. Roles belong to the whole server, so it is created only where the
-- connecting user may create roles; docs/reporting.md says how to create it otherwise.
do $$
begin
  if not exists (select from pg_roles where rolname = 'presently_reporting') then
    if not (select rolsuper or rolcreaterole from pg_roles where rolname = current_user) then
      raise notice 'role presently_reporting not created: % may not create roles', current_user;
      return;
    end if;
    create role presently_reporting nologin;
  end if;
  grant usage on schema reporting to presently_reporting;
  grant select on all tables in schema reporting to presently_reporting;
  grant execute on all functions in schema reporting to presently_reporting;
end;
$$;
