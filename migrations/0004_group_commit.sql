-- Heartbeats at scale: pings written many to a statement, counts that cost the same however many
-- users there are, and heartbeat updates that stay on their page.

-- How many users the change log counts as available, busy and away, kept as changes are
-- appended. Appends happen at commit under the log lock (see 0002), so the row is only ever
-- written by one transaction at a time, and only briefly: no ping waits on it. These counts
-- agree with presently.status_counts (which judges every user against now()) except for users
-- whose timeout has passed and whom the sweep has not marked away yet: about a second at most
-- while the service runs.
create table presently.status_totals (
  singleton boolean primary key default true check (singleton),
  available bigint not null default 0,
  busy bigint not null default 0,
  away bigint not null default 0
);

insert into presently.status_totals (available, busy, away)
select
  count(*) filter (where logged_status = 'available'),
  count(*) filter (where logged_status = 'busy'),
  count(*) filter (where logged_status = 'away')
from presently.presence;

create function presently.count_change()
returns trigger
language plpgsql
as $$
begin
  update presently.status_totals
  set available = available + (new.status is not distinct from 'available')::int
                            - (new.previous is not distinct from 'available')::int,
      busy = busy + (new.status is not distinct from 'busy')::int
                  - (new.previous is not distinct from 'busy')::int,
      away = away + (new.status is not distinct from 'away')::int
                  - (new.previous is not distinct from 'away')::int;
  return null;
end;
$$;

create trigger status_changes_count
after insert on presently.status_changes
for each row
execute function presently.count_change();

create function presently.reset_totals()
returns trigger
language plpgsql
as $$
begin
  update presently.status_totals set available = 0, busy = 0, away = 0;
  return null;
end;
$$;

create trigger status_changes_reset_totals
after truncate on presently.status_changes
for each statement
execute function presently.reset_totals();

-- A ping's answer includes the ping, but its change reaches the totals only at commit. So a
-- transaction notes the changes it has made and not yet committed (transaction-local, gone at
-- its end), and its pings answer the committed totals plus those. Heartbeats change nothing and
-- note nothing.
create function presently.pending_totals()
returns bigint[]
language sql
stable
as $$
  select coalesce(nullif(current_setting('presently.pending_totals', true), '')::bigint[],
                  array[0, 0, 0]::bigint[]);
$$;

create function presently.note_pending_change()
returns trigger
language plpgsql
as $$
declare
  pending bigint[] := presently.pending_totals();
  statuses constant text[] := array['available', 'busy', 'away'];
begin
  pending[array_position(statuses, new.logged_status)] :=
    pending[array_position(statuses, new.logged_status)] + 1;
  if tg_op = 'UPDATE' then
    pending[array_position(statuses, old.logged_status)] :=
      pending[array_position(statuses, old.logged_status)] - 1;
  end if;
  perform set_config('presently.pending_totals', pending::text, true);
  return null;
end;
$$;

-- After the row is written: a proposed insert that turns into an update fires BEFORE INSERT
-- triggers too, but only the write that happened fires these.
create trigger presence_pending_insert
after insert on presently.presence
for each row
execute function presently.note_pending_change();

create trigger presence_pending_update
after update of status, last_ping on presently.presence
for each row
when (old.logged_status is distinct from new.logged_status)
execute function presently.note_pending_change();

-- Many pings in one statement: the service collects the pings that arrive while a write is in
-- flight and writes them together (group commit), each answered once its batch has committed.
-- A user appears once per batch (the service keeps the last ping), and users come sorted, so
-- that two batches always lock shared users in the same order and never deadlock.
-- Answers the counts that include the batch.
create function presently.ping_many(p_user_ids text[], p_statuses text[])
returns table (available bigint, busy bigint, away bigint)
language sql
volatile
as $$
  insert into presently.presence as p (user_id, status, last_ping)
  select u.user_id, u.status, now()
  from unnest(p_user_ids, p_statuses) as u(user_id, status)
  on conflict (user_id) do update
    set status = excluded.status,
        last_ping = excluded.last_ping;

  select t.available + pending[1], t.busy + pending[2], t.away + pending[3]
  from presently.status_totals t
  cross join presently.pending_totals() as pending;
$$;

-- A heartbeat rewrites its row; with room left on the page the new version goes on the same page
-- and no index is touched (a HOT update), since no indexed column changes.
alter table presently.presence set (fillfactor = 70);
