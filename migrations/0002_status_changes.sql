-- The change log: every change of a user's effective status, in the order the changes committed.
-- It is the single record of what happened: sockets are driven by it, and reports are built on it.
-- Triggers write it; nothing in TypeScript decides what changed.

-- What the log last said about each user, and when that change happened. A trigger compares a
-- write with it to tell a change from a heartbeat, which must neither log nor notify. It lives on
-- the presence row (no index covers it) so that heartbeats stay single-row updates.
alter table presently.presence
  add column logged_status text check (logged_status in ('available', 'busy', 'away')),
  add column logged_at timestamptz;

update presently.presence p
set logged_status = case when p.last_ping >= now() - s.away_timeout then p.status else 'away' end,
    logged_at = case when p.last_ping >= now() - s.away_timeout then p.last_ping
                     else p.last_ping + s.away_timeout end
from presently.settings s;

alter table presently.presence
  alter column logged_status set not null,
  alter column logged_at set not null;

-- One row per change. `position` orders the log; readers keep the last position they have seen.
--   a new user:      previous is null;
--   a user removed:  status is null (a row deleted with SQL);
--   the log cleared: user_id, status and previous are all null; everything before it is gone.
-- `changed_at` is when the change happened: the ping's time, or for a user who went away by time,
-- the last ping plus the timeout (not when the sweep noticed).
create table presently.status_changes (
  position bigint generated always as identity primary key,
  user_id text collate "C",
  status text check (status in ('available', 'busy', 'away')),
  previous text check (previous in ('available', 'busy', 'away')),
  changed_at timestamptz not null,
  check (user_id is not null or (status is null and previous is null)),
  check (user_id is null or status is not null or previous is not null)
);

-- Positions come from a sequence, and transactions commit in any order: a reader that saw
-- position 11 must never find 10 appear later. So appends take this lock, and only at commit
-- (from deferred triggers), holding it through the commit: positions are handed out in commit
-- order, and a reader may simply read everything after the last position it saw. The lock is
-- held only between a transaction's last statement and its commit, never across client work.
create function presently.lock_change_log()
returns void
language sql
volatile
as $$
  select pg_advisory_xact_lock(hashtextextended('presently:status_changes', 0));
$$;

-- Appends a change and wakes listeners. The notification carries nothing: readers fetch the log
-- from their position, so nothing is lost to NOTIFY's size limit, to its merging of identical
-- notifications, or to a listener that was away. PostgreSQL merges identical notifications
-- within a transaction, so a transaction sends one however many changes it makes.
create function presently.append_change(
  p_user_id text, p_status text, p_previous text, p_changed_at timestamptz
)
returns void
language plpgsql
volatile
as $$
begin
  perform presently.lock_change_log();
  insert into presently.status_changes (user_id, status, previous, changed_at)
  values (p_user_id, p_status, p_previous, p_changed_at);
  perform pg_notify('presently_status_changes', '');
end;
$$;

-- The timeout the triggers judge by. Should someone delete the settings row (the service puts
-- it back at start), the column's default stands in rather than no timeout at all.
create function presently.away_timeout()
returns interval
language sql
stable
as $$
  select coalesce((select away_timeout from presently.settings), interval '60 seconds');
$$;

-- Before a ping's write: decide what the log will say. A ping that keeps the status of a user
-- who has not gone away is a heartbeat and keeps logged_status and logged_at as they were, so
-- that the change trigger below is not even queued.
create function presently.presence_before_ping()
returns trigger
language plpgsql
as $$
declare
  timeout interval := presently.away_timeout();
  effective text := case when new.last_ping >= now() - timeout then new.status else 'away' end;
begin
  if tg_op = 'UPDATE'
     and effective = old.logged_status
     -- Gone away by time, unnoticed by the sweep so far: that is a change even if the status is
     -- the same again (the log records the away interval in between).
     and not (old.logged_status <> 'away' and old.last_ping < now() - timeout) then
    new.logged_status := old.logged_status;
    new.logged_at := old.logged_at;
  else
    new.logged_status := effective;
    new.logged_at := case when effective = 'away' then new.last_ping + timeout
                          else new.last_ping end;
    -- A ping that began just before a sweep marked the user away commits after it: its change
    -- must not be dated before the away it follows.
    if tg_op = 'UPDATE' then
      new.logged_at := greatest(new.logged_at, old.logged_at);
    end if;
  end if;
  return new;
end;
$$;

create trigger presence_before_ping
before insert or update of status, last_ping on presently.presence
for each row
execute function presently.presence_before_ping();

-- At commit, append what changed. Deferred, so that the log lock is taken only at commit.
create function presently.presence_log_change()
returns trigger
language plpgsql
as $$
declare
  timeout interval := presently.away_timeout();
  previous text;
  ended_at timestamptz;
begin
  if tg_op = 'INSERT' then
    perform presently.append_change(new.user_id, new.logged_status, null, new.logged_at);
    return null;
  end if;

  previous := old.logged_status;
  ended_at := case when tg_op = 'UPDATE' then new.logged_at else now() end;
  -- The user went away by time before this write (a ping or a delete), and no sweep had logged
  -- it yet. Dated when it happened, but never before the change it follows.
  if previous <> 'away' and old.last_ping + timeout < ended_at
     and (tg_op = 'DELETE' or new.logged_status <> 'away') then
    perform presently.append_change(
      old.user_id, 'away', previous, greatest(old.last_ping + timeout, old.logged_at));
    previous := 'away';
  end if;

  if tg_op = 'DELETE' then
    perform presently.append_change(old.user_id, null, previous, now());
  elsif new.logged_status is distinct from previous then
    perform presently.append_change(new.user_id, new.logged_status, previous, new.logged_at);
  end if;
  return null;
end;
$$;

create constraint trigger presence_log_insert_delete
after insert or delete on presently.presence
deferrable initially deferred
for each row
execute function presently.presence_log_change();

create constraint trigger presence_log_update
after update on presently.presence
deferrable initially deferred
for each row
when (old.logged_status is distinct from new.logged_status
      or old.logged_at is distinct from new.logged_at)
execute function presently.presence_log_change();

-- Emptying the presence table (the API's clear) empties the log too: every record of every user
-- is gone. One marker row remains, so that readers past the old positions learn of the clear.
create function presently.presence_cleared()
returns trigger
language plpgsql
as $$
begin
  truncate presently.status_changes;
  perform presently.append_change(null, null, null, now());
  return null;
end;
$$;

create trigger presence_cleared
after truncate on presently.presence
for each statement
execute function presently.presence_cleared();

-- A new away timeout changes effective statuses without any write to presence. Users it brings
-- back (logged away, but within the new timeout) are logged back now, when the rule changed;
-- users it sends away are left to the sweep, which dates them at last ping plus the timeout.
create function presently.settings_changed()
returns trigger
language plpgsql
as $$
begin
  update presently.presence p
  set logged_status = p.status,
      logged_at = greatest(now(), p.logged_at)
  where p.logged_status = 'away'
    and p.last_ping >= now() - new.away_timeout;
  return null;
end;
$$;

create trigger settings_changed
after update of away_timeout on presently.settings
for each row
when (old.away_timeout is distinct from new.away_timeout)
execute function presently.settings_changed();

-- Clearing in a transaction that already pinged: the pending change triggers are run first,
-- since PostgreSQL refuses to truncate a table with pending trigger events. The table is locked
-- before they run: they take the log lock, and a writer committing meanwhile holds a lock on the
-- table while it waits for the log lock, so the other order would deadlock.
create or replace function presently.clear_all()
returns void
language sql
volatile
as $$
  lock table presently.presence in access exclusive mode;
  set constraints presently.presence_log_insert_delete, presently.presence_log_update immediate;
  truncate presently.presence;
$$;

-- Nothing writes when a user goes away by time, so this makes those transitions happen: it marks
-- due users away, and the change trigger logs them. Every instance runs it about once a second.
-- Rows another transaction holds (a sweep elsewhere, a ping right now) are skipped, not waited
-- for: that transaction logs them, so two sweeps never announce a change twice or deadlock.
-- The settings row is share-locked first, in a statement of its own: a timeout being changed
-- is waited for (and the next statement, with a snapshot of its own, sees it), or it waits for
-- the sweep, so the settings trigger above always sees what the sweep did. Taking it before any
-- presence row means the sweep never waits while holding users a ping may want.
-- Answers how many users it marked away.
create function presently.sweep_away()
returns integer
language sql
volatile
as $$
  select 1 from presently.settings for share;

  with due as (
    select p.user_id, p.last_ping + s.away_timeout as away_at
    from presently.presence p
    cross join presently.settings s
    where p.logged_status <> 'away'
      and p.last_ping < now() - s.away_timeout
    for update of p skip locked
  ),
  swept as (
    update presently.presence p
    -- Never dated before the change it follows (a timeout lowered after a user was logged back).
    set logged_status = 'away',
        logged_at = greatest(due.away_at, p.logged_at)
    from due
    where p.user_id = due.user_id
    returning 1
  )
  select count(*)::integer from swept;
$$;
