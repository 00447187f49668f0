-- Sessions, overrides and status messages (issue "Devices"): one user, many devices, merged here.
--
-- The presence row stays the user's row, and keeps being the user's *default session* (a ping
-- without `session`): its status and last ping are where they were, so every user's status, time
-- and history carry over without copying a row. Named sessions get a table of their own. Nothing
-- below rewrites or scans presence: new columns have no default (or a constant one, stored in
-- the catalog), new checks are `not valid` (enforced on every new write, never checked against
-- rows that are all null anyway), and no index is built on it. The migration's transaction holds
-- its lock on presence for the time of a few catalog updates, however many users there are.

-- status null: the default session is not open (ended by DELETE, or a user who only ever pinged
-- named sessions).
alter table presently.presence alter column status drop not null;

alter table presently.presence
  -- The default session's own timeout (a ping's `timeout`); null: the away timeout.
  add column timeout interval,
  -- The sweep has seen the default session lapse, so it does not find it again every second
  -- while the user stays online on other sessions. A new ping clears it (see the trigger).
  add column lapsed boolean not null default false,
  -- The latest time-based event the sweep (or an ended session) recorded: when a session lapsed
  -- or ended, an override or a message expired. Changes they cause are dated by it.
  add column event_at timestamptz,
  -- The latest ping of a named session that is gone: `time` never goes back when one ends.
  add column seen_at timestamptz,
  -- Do-not-disturb (busy) or appear-away (away), until override_expires (null: until ended).
  add column override_status text,
  add column override_expires timestamptz,
  add column message text,
  add column message_expires timestamptz,
  -- What the change log last said about the message, as logged_status is for the status.
  add column logged_message text;

alter table presently.presence
  add constraint presence_timeout check (timeout > interval '0') not valid,
  add constraint presence_override check (override_status in ('busy', 'away')) not valid,
  add constraint presence_message check (char_length(message) between 1 and 100) not valid;

-- Named sessions: one row per live (or lapsed and not yet swept) device of a user. No foreign
-- key, so that presence can still be truncated alone (clearing); the presence triggers below
-- remove a user's sessions with the user. Every write to a user's sessions is made while holding
-- the user's presence row, so pings, ends and sweeps of one user never deadlock. A heartbeat
-- changes no indexed column, and the page keeps room for the new version: a HOT update.
create table presently.sessions (
  user_id text collate "C" not null,
  session text collate "C" not null check (char_length(session) between 1 and 128),
  status text not null check (status in ('available', 'busy')),
  last_ping timestamptz not null,
  -- Resolved at ping time (the ping's, or the away timeout then).
  timeout interval not null check (timeout > interval '0'),
  primary key (user_id, session)
) with (fillfactor = 70);

-- Known empty: a table never analyzed is guessed at ten pages, and the status views probe it
-- once per user (see 0005 for what a guessed size cost). Autovacuum analyzes it as it grows.
analyze presently.sessions;

-- A user's effective status at now(), from the presence row (the default session, override),
-- `p_named`, the highest status among the user's live named sessions, and `p_timeout` (the away
-- timeout): the highest status among live sessions (busy above available: also their text
-- order); an override while it lasts and a session is live; away when none is live. One
-- expression, no FROM, so that PostgreSQL inlines it into the views.
create function presently.effective_status(p presently.presence, p_timeout interval, p_named text)
returns text
language sql
stable
as $$
  select case
    when greatest(case when p.last_ping >= now() - coalesce(p.timeout, p_timeout)
                       then p.status end, p_named) is null then 'away'
    when p.override_status is not null
         and (p.override_expires is null or p.override_expires > now()) then p.override_status
    else greatest(case when p.last_ping >= now() - coalesce(p.timeout, p_timeout)
                       then p.status end, p_named)
  end;
$$;

-- The highest status among a user's live named sessions (null: none).
create function presently.named_status(p_user_id text)
returns text
language sql
stable
as $$
  select max(s.status) from presently.sessions s
  where s.user_id = p_user_id and s.last_ping >= now() - s.timeout;
$$;

-- The same for the triggers, which judge one row at a time.
create function presently.effective_status(p presently.presence, p_timeout interval)
returns text
language sql
stable
as $$
  select presently.effective_status(p, p_timeout, presently.named_status(p.user_id));
$$;

create function presently.effective_message(p presently.presence)
returns text
language sql
stable
as $$
  select case when p.message_expires is null or p.message_expires > now() then p.message end;
$$;

-- The latest time-based event up to now: a session's end, an expiry. A change that time made
-- (noticed by the sweep or by a later write) is dated by it, not by when it was noticed.
create function presently.time_event(p presently.presence, p_timeout interval)
returns timestamptz
language sql
stable
as $$
  select nullif(greatest(
    '-infinity'::timestamptz,
    case when p.status is not null and p.last_ping + coalesce(p.timeout, p_timeout) <= now()
         then p.last_ping + coalesce(p.timeout, p_timeout) end,
    (select max(s.last_ping + s.timeout) from presently.sessions s
     where s.user_id = p.user_id and s.last_ping + s.timeout <= now()),
    case when p.override_expires <= now() then p.override_expires end,
    case when p.message_expires <= now() then p.message_expires end,
    p.event_at
  ), '-infinity');
$$;

-- Every read of a status still goes through this view (same columns, `message` added): the
-- effective status, `time` the latest ping of any session, the message while it lasts. The
-- named sessions of a user are read once, by the primary key (an empty probe for the seed's
-- users, who have none).
create or replace view presently.user_status as
select
  p.user_id,
  presently.effective_status(p, s.away_timeout, n.best) as status,
  greatest(p.last_ping, p.seen_at, n.latest) as last_ping,
  floor(extract(epoch from greatest(p.last_ping, p.seen_at, n.latest)))::bigint as "time",
  presently.effective_message(p) as message
from presently.presence p
cross join presently.settings s
cross join lateral (
  select max(x.status) filter (where x.last_ping >= now() - x.timeout) as best,
         max(x.last_ping) as latest
  from presently.sessions x
  where x.user_id = p.user_id
) n;

-- The live sessions of every user, the default one named `default`.
create view presently.live_sessions as
select p.user_id, 'default'::text collate "C" as session, p.status, p.last_ping,
       floor(extract(epoch from p.last_ping))::bigint as "time"
from presently.presence p
cross join presently.settings s
where p.status is not null and p.last_ping >= now() - coalesce(p.timeout, s.away_timeout)
union all
select n.user_id, n.session, n.status, n.last_ping, floor(extract(epoch from n.last_ping))::bigint
from presently.sessions n
where n.last_ping >= now() - n.timeout;

-- The change log records the message too: a message set or cleared is a change (status and
-- previous then equal), so subscribers hear of it and history keeps it.
alter table presently.status_changes add column message text;

create or replace function presently.append_change(
  p_user_id text, p_status text, p_previous text, p_changed_at timestamptz, p_message text
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
    -- A row is a change: what the log already says last is not said twice (a user created and
    -- judged again in one transaction logs once; see presence_log_change).
    if found and p_status is not null and last.status is not distinct from p_status
       and last.message is not distinct from p_message and last.ended_at is null then
      return;
    end if;
    if found and last.ended_at is null then
      at := greatest(at, last.changed_at);
      update presently.status_changes set ended_at = at where position = last.position;
    elsif found then
      at := greatest(at, last.ended_at);
    end if;
  end if;
  insert into presently.status_changes (user_id, status, previous, changed_at, ended_at, message)
  values (p_user_id, p_status, p_previous, at, case when p_status is null then at end, p_message);
  perform pg_notify('presently_status_changes', '');
end;
$$;

-- The four-argument form (0003) stays for anything calling it: no message.
create or replace function presently.append_change(
  p_user_id text, p_status text, p_previous text, p_changed_at timestamptz
)
returns void
language sql
volatile
as $$
  select presently.append_change(p_user_id, p_status, p_previous, p_changed_at, null);
$$;

-- Before a write to a user's row: decide what the log will say, now from all the user's
-- sessions, the override and the message. A write that leaves the effective status and message
-- as the log has them, when nothing changed by time unnoticed either, is a heartbeat: logged_*
-- stay as they were and no change trigger is queued.
create or replace function presently.presence_before_ping()
returns trigger
language plpgsql
as $$
declare
  v_timeout interval := presently.away_timeout();
  -- The user's named sessions, read once for the old and the new row alike.
  named text := presently.named_status(new.user_id);
  effective text;
  message text;
  live boolean;
  since timestamptz;
begin
  -- A new ping of the default session reopens it for the sweep.
  if tg_op = 'UPDATE' and new.last_ping is distinct from old.last_ping then
    new.lapsed := false;
  end if;
  effective := presently.effective_status(new, v_timeout, named);
  message := presently.effective_message(new);
  if tg_op = 'UPDATE'
     and effective = old.logged_status
     and message is not distinct from old.logged_message
     -- Changed by time, unnoticed by the sweep so far (gone away, a session or an override
     -- lapsed): that is a change even if the status is the same again.
     and presently.effective_status(old, v_timeout, named) = old.logged_status then
    new.logged_status := old.logged_status;
    new.logged_at := old.logged_at;
    new.logged_message := old.logged_message;
    return new;
  end if;
  live := named is not null
    or (new.status is not null and new.last_ping >= now() - coalesce(new.timeout, v_timeout));
  if tg_op = 'INSERT' then
    since := case when live then new.last_ping
                  else least(now(), presently.time_event(new, v_timeout)) end;
  elsif new.event_at is distinct from old.event_at or not live then
    -- Time made this change (the sweep recorded an event), or the last session ended.
    since := least(now(), coalesce(presently.time_event(new, v_timeout), now()));
  else
    since := now();
  end if;
  new.logged_status := effective;
  new.logged_message := message;
  new.logged_at := coalesce(since, now());
  -- A write that began just before a sweep marked the user commits after it: its change must
  -- not be dated before the change it follows.
  if tg_op = 'UPDATE' then
    new.logged_at := greatest(new.logged_at, old.logged_at);
  end if;
  return new;
end;
$$;

drop trigger presence_before_ping on presently.presence;
create trigger presence_before_ping
before insert or update of status, last_ping, timeout, lapsed, event_at, seen_at,
  override_status, override_expires, message, message_expires
on presently.presence
for each row
execute function presently.presence_before_ping();

-- At commit, append what changed, the message with it. A change time made before this write
-- and nobody logged yet (the user went away unnoticed) is logged first, dated when it happened.
create or replace function presently.presence_log_change()
returns trigger
language plpgsql
as $$
declare
  v_timeout interval := presently.away_timeout();
  previous text;
  was text;
  current presently.presence;
begin
  if tg_op = 'INSERT' then
    -- The row as it is at commit: a user created by a named session's ping is inserted before
    -- the session is, then judged again; the log says once what they are.
    select * into current from presently.presence p where p.user_id = new.user_id;
    if not found then current := new; end if;
    perform presently.append_change(
      new.user_id, current.logged_status, null, current.logged_at, current.logged_message);
    return null;
  end if;

  previous := old.logged_status;
  was := presently.effective_status(old, v_timeout);
  if was is distinct from previous
     and (tg_op = 'DELETE' or new.logged_status is distinct from was) then
    perform presently.append_change(
      old.user_id, was, previous,
      greatest(least(now(), presently.time_event(old, v_timeout)), old.logged_at),
      old.logged_message);
    previous := was;
  end if;

  if tg_op = 'DELETE' then
    perform presently.append_change(old.user_id, null, previous, now(), null);
  elsif new.logged_status is distinct from previous
        or new.logged_message is distinct from old.logged_message then
    perform presently.append_change(
      new.user_id, new.logged_status, previous, new.logged_at, new.logged_message);
  end if;
  return null;
end;
$$;

drop trigger presence_log_update on presently.presence;
create constraint trigger presence_log_update
after update on presently.presence
deferrable initially deferred
for each row
when (old.logged_status is distinct from new.logged_status
      or old.logged_at is distinct from new.logged_at
      or old.logged_message is distinct from new.logged_message)
execute function presently.presence_log_change();

-- A user removed with SQL takes their sessions along; clearing empties them too.
create function presently.presence_removed()
returns trigger
language plpgsql
as $$
begin
  delete from presently.sessions where user_id = old.user_id;
  return null;
end;
$$;

create trigger presence_removed
after delete on presently.presence
for each row
execute function presently.presence_removed();

create or replace function presently.presence_cleared()
returns trigger
language plpgsql
as $$
begin
  -- Analyzed again once empty: truncating forgets the statistics, and a table never analyzed
  -- is guessed at ten pages, probed once per user by the status views.
  if exists (select from presently.sessions) then
    truncate presently.sessions;
    analyze presently.sessions;
  end if;
  truncate presently.status_changes;
  perform presently.append_change(null, null, null, now());
  return null;
end;
$$;

-- A named session's ping that opens it or changes its status makes the user's row judge again
-- (a write of the row, which the caller already holds). A heartbeat matches no condition here,
-- so it queues no trigger work at all, as in 0004.
create function presently.session_changed()
returns trigger
language plpgsql
as $$
begin
  update presently.presence set lapsed = lapsed where user_id = new.user_id;
  return null;
end;
$$;

create trigger session_opened
after insert on presently.sessions
for each row
execute function presently.session_changed();

create trigger session_status_changed
after update on presently.sessions
for each row
when (old.status is distinct from new.status)
execute function presently.session_changed();

-- A new away timeout: default sessions that follow it and are live again are reopened, and the
-- row judges again (logging the user back). Users it sends away are left to the sweep.
create or replace function presently.settings_changed()
returns trigger
language plpgsql
as $$
begin
  update presently.presence p
  set lapsed = false
  where (p.lapsed or p.logged_status = 'away')
    and p.status is not null
    and p.timeout is null
    and p.last_ping >= now() - new.away_timeout;
  return null;
end;
$$;

-- The sweep, for every user (p_user_ids null) or for the named ones: ends what time has ended.
-- Due are default sessions past their timeout, named sessions past theirs (removed, their last
-- ping and end kept on the user's row), overrides and messages past their expiry. Each is
-- recorded with its real time in event_at, and the user's row judges again: its trigger logs
-- what changed, dated then. Users another transaction holds are skipped, not waited for (that
-- transaction logs them), so sweeps never wait, deadlock, nor announce twice. The settings row
-- is share-locked first, in a statement of its own (see 0002). Cost: one pass over presence and
-- one over sessions; only due users are written.
create function presently.sweep(p_user_ids text[])
returns integer
language plpgsql
volatile
-- Its plan is costed as a scan of every user and session: on a server built with JIT that is
-- compiled (and optimized, at a million users) every second, far more work than the scan.
set jit = off
as $$
declare
  v_timeout interval;
  due text[];
  swept integer;
begin
  -- The periodic sweep only: a ping's or an end's catch-up (users named, their rows held)
  -- would otherwise share-lock the one settings row in every batch, a lock on one hot row.
  if p_user_ids is null then
    perform 1 from presently.settings for share;
  end if;
  v_timeout := presently.away_timeout();
  -- Who is due, read first on its own: a statement that only reads may be run in parallel, and
  -- most sweeps find nobody, so they end here without locking or writing anything.
  select array_agg(c.user_id) into due
  from (
    select p.user_id
    from presently.presence p
    where (p_user_ids is null or p.user_id = any(p_user_ids))
      and ((p.status is not null and not p.lapsed and p.logged_status <> 'away'
            and p.last_ping < now() - coalesce(p.timeout, v_timeout))
           or p.override_expires <= now()
           or p.message_expires <= now())
    union
    select s.user_id
    from presently.sessions s
    where (p_user_ids is null or s.user_id = any(p_user_ids))
      and s.last_ping < now() - s.timeout
  ) c;
  if due is null then
    return 0;
  end if;
  with locked as (
    select p.user_id
    from presently.presence p
    where p.user_id = any(due)
    for no key update of p skip locked
  ),
  gone as (
    delete from presently.sessions s
    using locked l
    where s.user_id = l.user_id and s.last_ping < now() - s.timeout
    returning s.user_id, s.last_ping, s.last_ping + s.timeout as ended
  ),
  folded as (
    select g.user_id, max(g.last_ping) as seen, max(g.ended) as ended
    from gone g
    group by g.user_id
  ),
  marked as (
    update presently.presence p
    set lapsed = p.lapsed
          or (p.status is not null and p.last_ping < now() - coalesce(p.timeout, v_timeout)),
        override_status = case when p.override_expires <= now() then null
                               else p.override_status end,
        override_expires = case when p.override_expires <= now() then null
                                else p.override_expires end,
        message = case when p.message_expires <= now() then null else p.message end,
        message_expires = case when p.message_expires <= now() then null
                               else p.message_expires end,
        seen_at = greatest(p.seen_at, f.seen),
        event_at = greatest(
          p.event_at,
          f.ended,
          case when p.status is not null and not p.lapsed
                    and p.last_ping < now() - coalesce(p.timeout, v_timeout)
               then p.last_ping + coalesce(p.timeout, v_timeout) end,
          case when p.override_expires <= now() then p.override_expires end,
          case when p.message_expires <= now() then p.message_expires end)
    from locked l
    left join folded f on f.user_id = l.user_id
    where p.user_id = l.user_id
    returning 1
  )
  select count(*)::integer into swept from marked;
  return swept;
end;
$$;

-- Every instance still calls this about once a second; it answers how many users it swept.
create or replace function presently.sweep_away()
returns integer
language sql
volatile
as $$
  select presently.sweep(null);
$$;

-- Pings of any sessions, many to a statement (the service's group commit). Arrays in step: the
-- user, the status, the session (null: the default session) and the timeout in seconds (null:
-- the away timeout). One ping per user and session, sorted by user then session.
--
-- Lock order, the same in every transaction, so that batches never deadlock: first every user
-- of the batch (presence rows, in id order; new users inserted, with no default session yet),
-- then their sessions, then the default sessions (rows already held). A batch of default pings
-- only (the seed's clients) is the upsert of 0004, as before.
create function presently.ping_many(
  p_user_ids text[], p_statuses text[], p_sessions text[], p_timeouts double precision[]
)
returns table (available bigint, busy bigint, away bigint)
language plpgsql
volatile
as $$
declare
  named text[];
  away_timeout interval := presently.away_timeout();
begin
  select array_agg(distinct u.user_id order by u.user_id) into named
  from unnest(p_user_ids, p_sessions) as u(user_id, session)
  where u.session is not null;

  if named is not null then
    -- Every user of the batch held, in id order: existing rows locked (do update ... where
    -- false locks without writing), new users inserted.
    insert into presently.presence as p (user_id, status, last_ping)
    select u.user_id, null, now()
    from (select distinct x.user_id from unnest(p_user_ids) as x(user_id)) u
    order by u.user_id collate "C"
    on conflict (user_id) do update set lapsed = p.lapsed where false;
    -- What time ended for these users is ended first, dated when it happened, so that a ping
    -- reviving a session the sweep had not yet noticed lapsing still logs the lapse.
    perform presently.sweep(named);
    insert into presently.sessions as s (user_id, session, status, last_ping, timeout)
    select u.user_id, u.session, u.status, now(),
           coalesce(make_interval(secs => u.timeout), away_timeout)
    from unnest(p_user_ids, p_statuses, p_sessions, p_timeouts)
      as u(user_id, status, session, timeout)
    where u.session is not null
    order by u.user_id collate "C", u.session collate "C"
    on conflict (user_id, session) do update
      set status = excluded.status,
          last_ping = excluded.last_ping,
          timeout = excluded.timeout;
  end if;

  insert into presently.presence as p (user_id, status, last_ping, timeout)
  select u.user_id, u.status, now(), make_interval(secs => u.timeout)
  from unnest(p_user_ids, p_statuses, p_sessions, p_timeouts)
    as u(user_id, status, session, timeout)
  where u.session is null
  on conflict (user_id) do update
    set status = excluded.status,
        last_ping = excluded.last_ping,
        timeout = excluded.timeout;

  return query
    select t.available + pending[1], t.busy + pending[2], t.away + pending[3]
    from presently.status_totals t
    cross join presently.pending_totals() as pending;
end;
$$;

-- The seed's forms: default sessions with the away timeout.
create or replace function presently.ping_many(p_user_ids text[], p_statuses text[])
returns table (available bigint, busy bigint, away bigint)
language sql
volatile
as $$
  select * from presently.ping_many(
    p_user_ids, p_statuses,
    array_fill(null::text, array[cardinality(p_user_ids)]),
    array_fill(null::double precision, array[cardinality(p_user_ids)]));
$$;

create or replace function presently.ping(p_user_id text, p_status text)
returns setof presently.status_counts
language sql
volatile
as $$
  select available, busy, away
  from presently.ping_many(array[p_user_id], array[p_status]);
$$;

-- Ends a session at once (p_session null: the default session). Answers 'ended', or
-- 'user_not_found', or 'session_not_found' for a session that is not live. The user's row is
-- held first, as every writer of sessions does.
create function presently.end_session(p_user_id text, p_session text)
returns text
language plpgsql
volatile
as $$
declare
  seen timestamptz;
begin
  perform 1 from presently.presence where user_id = p_user_id for no key update;
  if not found then
    return 'user_not_found';
  end if;
  perform presently.sweep(array[p_user_id]);
  if p_session is null then
    update presently.presence p
    set status = null, event_at = greatest(p.event_at, now())
    where p.user_id = p_user_id and p.status is not null
      and p.last_ping >= now() - coalesce(p.timeout, presently.away_timeout());
    return case when found then 'ended' else 'session_not_found' end;
  end if;
  delete from presently.sessions s
  where s.user_id = p_user_id and s.session = p_session and s.last_ping >= now() - s.timeout
  returning s.last_ping into seen;
  if not found then
    return 'session_not_found';
  end if;
  update presently.presence p
  set seen_at = greatest(p.seen_at, seen), event_at = greatest(p.event_at, now())
  where p.user_id = p_user_id;
  return 'ended';
end;
$$;

-- Reporting: sessions and overrides over time, so that analysts can count devices per user and
-- day, and time spent in do-not-disturb. Each row is an interval (ended null while it lasts),
-- written only when a session opens or ends, or an override is set or ends: never by a
-- heartbeat.
create table presently.session_intervals (
  id bigint generated always as identity primary key,
  user_id text collate "C" not null,
  session text collate "C" not null,
  started timestamptz not null,
  ended timestamptz
);
create unique index session_intervals_open on presently.session_intervals (user_id, session)
  where ended is null;
create index session_intervals_period on presently.session_intervals
  using gist (tstzrange(started, ended));

create table presently.override_intervals (
  id bigint generated always as identity primary key,
  user_id text collate "C" not null,
  status text not null check (status in ('busy', 'away')),
  started timestamptz not null,
  ended timestamptz
);
create unique index override_intervals_open on presently.override_intervals (user_id)
  where ended is null;
create index override_intervals_period on presently.override_intervals
  using gist (tstzrange(started, ended));

create function presently.open_session_interval(p_user_id text, p_session text, p_at timestamptz)
returns void
language sql
volatile
as $$
  insert into presently.session_intervals (user_id, session, started)
  values (p_user_id, p_session, p_at)
  on conflict (user_id, session) where ended is null do nothing;
$$;

create function presently.close_session_interval(p_user_id text, p_session text, p_at timestamptz)
returns void
language sql
volatile
as $$
  update presently.session_intervals
  set ended = greatest(started, p_at)
  where user_id = p_user_id and session = p_session and ended is null;
$$;

-- Named sessions: opened with their row, ended with it (by the sweep, at their real end, or by
-- DELETE or user-leave, at once).
create or replace function presently.session_changed()
returns trigger
language plpgsql
as $$
begin
  if tg_op = 'INSERT' then
    perform presently.open_session_interval(new.user_id, new.session, new.last_ping);
  end if;
  update presently.presence set lapsed = lapsed where user_id = new.user_id;
  return null;
end;
$$;

create function presently.session_removed()
returns trigger
language plpgsql
as $$
begin
  perform presently.close_session_interval(
    old.user_id, old.session, least(now(), old.last_ping + old.timeout));
  return null;
end;
$$;

create trigger session_removed
after delete on presently.sessions
for each row
execute function presently.session_removed();

-- The default session: opened by a ping that finds it closed (new, ended, or lapsed and
-- swept), ended when the sweep marks it lapsed (at its real end) or when it is ended at once.
create function presently.default_session_changed()
returns trigger
language plpgsql
as $$
begin
  if new.status is not null and not new.lapsed then
    perform presently.open_session_interval(new.user_id, 'default', new.last_ping);
  elsif tg_op = 'UPDATE' then
    perform presently.close_session_interval(
      new.user_id, 'default',
      case when new.status is null then now()
           else least(now(), old.last_ping + coalesce(old.timeout, presently.away_timeout())) end);
  end if;
  return null;
end;
$$;

create trigger presence_default_opened
after insert on presently.presence
for each row
when (new.status is not null)
execute function presently.default_session_changed();

create trigger presence_default_changed
after update on presently.presence
for each row
when (old.lapsed is distinct from new.lapsed
      or (old.status is null) is distinct from (new.status is null))
execute function presently.default_session_changed();

-- Overrides: a new one ends the previous; one that expires ends at its expiry.
create function presently.override_changed()
returns trigger
language plpgsql
as $$
begin
  if tg_op = 'UPDATE' and old.override_status is not null then
    update presently.override_intervals
    set ended = greatest(started, least(now(), coalesce(old.override_expires, now())))
    where user_id = old.user_id and ended is null;
  end if;
  if new.override_status is not null then
    insert into presently.override_intervals (user_id, status, started, ended)
    values (new.user_id, new.override_status, now(), null);
  end if;
  return null;
end;
$$;

create trigger presence_override_changed
after update on presently.presence
for each row
when (old.override_status is distinct from new.override_status
      or old.override_expires is distinct from new.override_expires)
execute function presently.override_changed();

-- Clearing forgets these too.
create or replace function presently.presence_cleared()
returns trigger
language plpgsql
as $$
begin
  -- Analyzed again once empty: truncating forgets the statistics, and a table never analyzed
  -- is guessed at ten pages, probed once per user by the status views.
  if exists (select from presently.sessions) then
    truncate presently.sessions;
    analyze presently.sessions;
  end if;
  truncate presently.session_intervals, presently.override_intervals;
  truncate presently.status_changes;
  perform presently.append_change(null, null, null, now());
  return null;
end;
$$;

-- Intervals that ended before the retention period are pruned with the log (see 0003).
create function presently.prune_session_history(p_keep interval)
returns integer
language sql
volatile
as $$
  with a as (delete from presently.session_intervals where ended < now() - p_keep returning 1),
       b as (delete from presently.override_intervals where ended < now() - p_keep returning 1)
  select ((select count(*) from a) + (select count(*) from b))::integer;
$$;

-- The stable interface for analysts.
create or replace view reporting.user_status as
select user_id, status, last_ping, message
from presently.user_status;

create or replace view reporting.status_changes as
select position, user_id, status, previous, changed_at, message
from presently.status_changes;

create or replace view reporting.status_intervals as
select
  c.position,
  c.user_id,
  c.status,
  c.changed_at as started,
  c.ended_at as ended,
  coalesce(c.ended_at, now()) - c.changed_at as duration,
  tstzrange(c.changed_at, c.ended_at) as period,
  c.message
from presently.status_changes c
where c.status is not null;

-- Sessions and overrides over a period, as functions (the views of `reporting` stay the five
-- of 0003). One row per time a session (device) was open, `default` being the session of pings
-- without one; one row per override, busy being do-not-disturb and away appear-away. `ended`
-- is null while it lasts.
create function reporting.session_intervals(p_from timestamptz, p_to timestamptz)
returns table (user_id text, session text, started timestamptz, ended timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select i.user_id, i.session, i.started, i.ended
  from presently.session_intervals i
  where tstzrange(i.started, i.ended) && tstzrange(p_from, p_to)
  order by i.started, i.user_id, i.session;
$$;

create function reporting.override_intervals(p_from timestamptz, p_to timestamptz)
returns table (user_id text, status text, started timestamptz, ended timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select o.user_id, o.status, o.started, o.ended
  from presently.override_intervals o
  where tstzrange(o.started, o.ended) && tstzrange(p_from, p_to)
  order by o.started, o.user_id;
$$;

-- Devices per user and day: the sessions open at some moment of the day (days of p_zone).
create function reporting.devices(p_from timestamptz, p_to timestamptz, p_zone text default null)
returns table (user_id text, day date, devices bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  with zone as materialized (select reporting.report_zone(p_zone) as name)
  select i.user_id, d.midnight::date, count(distinct i.session)
  from presently.session_intervals i
  cross join zone z
  cross join lateral generate_series(
    (greatest(i.started, p_from) at time zone z.name)::date::timestamp,
    ((least(coalesce(i.ended, now()), p_to) - interval '1 microsecond') at time zone z.name)
      ::date::timestamp,
    interval '1 day') as d(midnight)
  where tstzrange(i.started, i.ended) && tstzrange(p_from, p_to)
  group by i.user_id, d.midnight
  order by d.midnight, i.user_id;
$$;

-- Seconds of do-not-disturb (a busy override) per user and day, inside [p_from, p_to).
create function reporting.do_not_disturb(
  p_from timestamptz, p_to timestamptz, p_zone text default null
)
returns table (user_id text, day date, seconds double precision)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  with zone as materialized (select reporting.report_zone(p_zone) as name),
  pieces as materialized (
    select o.user_id, greatest(o.started, p_from) as started,
           least(coalesce(o.ended, now()), p_to) as ended
    from presently.override_intervals o
    where o.status = 'busy' and tstzrange(o.started, o.ended) && tstzrange(p_from, p_to)
  )
  select p.user_id, d.midnight::date,
         sum(extract(epoch from
           least(p.ended, (d.midnight + interval '1 day') at time zone z.name)
           - greatest(p.started, d.midnight at time zone z.name)))::float8
  from pieces p
  cross join zone z
  cross join lateral generate_series(
    (p.started at time zone z.name)::date::timestamp,
    (p.ended at time zone z.name)::date::timestamp,
    interval '1 day') as d(midnight)
  where p.ended > p.started
    and least(p.ended, (d.midnight + interval '1 day') at time zone z.name)
        > greatest(p.started, d.midnight at time zone z.name)
  group by p.user_id, d.midnight
  order by d.midnight, p.user_id;
$$;

revoke execute on function reporting.session_intervals(timestamptz, timestamptz) from public;
revoke execute on function reporting.override_intervals(timestamptz, timestamptz) from public;
revoke execute on function reporting.devices(timestamptz, timestamptz, text) from public;
revoke execute on function reporting.do_not_disturb(timestamptz, timestamptz, text) from public;

do $$
begin
  if exists (select from pg_roles where rolname = 'presently_reporting') then
    grant select on all tables in schema reporting to presently_reporting;
    grant execute on all functions in schema reporting to presently_reporting;
  end if;
end;
$$;
