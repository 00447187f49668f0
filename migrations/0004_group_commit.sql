-- Heartbeats at scale: pings written many to a statement, counts that cost the same however many
-- users there are, and heartbeat updates that stay on their page.

-- How many users have each logged status (what the change log last said about them), so that a
-- ping's answer costs the same with a thousand users or a million. These counts agree with
-- presently.status_counts (which judges every user against now()) except for users whose
-- timeout has passed and whom the sweep has not marked away yet: about a second at most while
-- the service runs.
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

-- A transaction adds up the changes of logged status it makes in a transaction-local setting
-- (undone with it, or with a savepoint), and applies the sum to the totals once, at commit. Not
-- row by row: a row updated again and again in one transaction leaves a version per update,
-- each found again by the next, so a thousand changes would cost a million visits. Not at the
-- end of each statement either: the totals row would stay locked until commit, and an open
-- transaction would hold up every other ping that changes a status.
create function presently.pending_totals()
returns bigint[]
language sql
stable
as $$
  select coalesce(nullif(current_setting('presently.pending_totals', true), '')::bigint[],
                  array[0, 0, 0]::bigint[]);
$$;

-- One row per transaction that has pending totals: its insert queues the deferred trigger
-- below, which so runs once, at commit.
create table presently.totals_at_commit (
  transaction_id xid8 primary key
);

create function presently.note_pending_change()
returns trigger
language plpgsql
as $$
declare
  pending bigint[] := presently.pending_totals();
  statuses constant text[] := array['available', 'busy', 'away'];
  added integer := array_position(statuses, case when tg_op <> 'DELETE' then new.logged_status end);
  removed integer := array_position(statuses, case when tg_op <> 'INSERT' then old.logged_status end);
begin
  if added is not null then pending[added] := pending[added] + 1; end if;
  if removed is not null then pending[removed] := pending[removed] - 1; end if;
  perform set_config('presently.pending_totals', pending::text, true);
  if coalesce(current_setting('presently.totals_at_commit', true), '') = '' then
    insert into presently.totals_at_commit values (pg_current_xact_id());
    perform set_config('presently.totals_at_commit', 'queued', true);
  end if;
  return null;
end;
$$;

create trigger presence_pending_insert
after insert on presently.presence
for each row
execute function presently.note_pending_change();

create trigger presence_pending_update
after update on presently.presence
for each row
when (old.logged_status is distinct from new.logged_status)
execute function presently.note_pending_change();

create trigger presence_pending_delete
after delete on presently.presence
for each row
execute function presently.note_pending_change();

-- At commit: the transaction's sum goes into the totals, under the log lock, so the totals row
-- is written by one committing transaction at a time and only for the time of its commit.
create function presently.apply_pending_totals()
returns trigger
language plpgsql
as $$
declare
  pending bigint[] := presently.pending_totals();
begin
  perform presently.lock_change_log();
  update presently.status_totals
  set available = available + pending[1],
      busy = busy + pending[2],
      away = away + pending[3]
  where pending <> array[0, 0, 0]::bigint[];
  perform set_config('presently.pending_totals', '', true);
  delete from presently.totals_at_commit where transaction_id = new.transaction_id;
  return null;
end;
$$;

create constraint trigger totals_apply_at_commit
after insert on presently.totals_at_commit
deferrable initially deferred
for each row
execute function presently.apply_pending_totals();

-- Clearing empties the totals, and what the clearing transaction had pending before.
create function presently.reset_totals()
returns trigger
language plpgsql
as $$
begin
  update presently.status_totals set available = 0, busy = 0, away = 0;
  perform set_config('presently.pending_totals', '', true);
  return null;
end;
$$;

create trigger presence_reset_totals
after truncate on presently.presence
for each statement
execute function presently.reset_totals();

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
