-- presently keeps its tables, views and functions in one schema of its own, so that it can share
-- a database with other applications.
create schema if not exists presently;

-- One row, so the away timeout lives where SQL can read it: views derive `away` from it, and an
-- analyst querying the database gets exactly the answers the API gives.
create table presently.settings (
  singleton boolean primary key default true check (singleton),
  away_timeout interval not null default interval '60 seconds'
    check (away_timeout > interval '0')
);
insert into presently.settings default values;

-- The last ping of each user. `away` is never stored: it is a matter of time, derived below.
-- Ids compare byte-wise ("C"), so order and equality never depend on the server's locale.
create table presently.presence (
  user_id text collate "C" primary key
    check (char_length(user_id) between 1 and 128),
  status text not null check (status in ('available', 'busy')),
  last_ping timestamptz not null
);

-- The effective status of every user. Every read of a status goes through this view.
-- A user is away once the last ping is older than the timeout; `time` is the Unix time of the
-- last ping in whole seconds, for away users too.
create view presently.user_status as
select
  p.user_id,
  case
    when p.last_ping >= now() - s.away_timeout then p.status
    else 'away'
  end as status,
  p.last_ping,
  floor(extract(epoch from p.last_ping))::bigint as "time"
from presently.presence p
cross join presently.settings s;

-- Always exactly one row with all three counts, zeros included.
create view presently.status_counts as
select
  count(*) filter (where status = 'available') as available,
  count(*) filter (where status = 'busy') as busy,
  count(*) filter (where status = 'away') as away
from presently.user_status;

-- A ping: upsert the last ping, then answer the counts that include it, in one round trip.
-- The function is volatile, so its second statement sees the first one's row.
create function presently.ping(p_user_id text, p_status text)
returns setof presently.status_counts
language sql
volatile
as $$
  insert into presently.presence as p (user_id, status, last_ping)
  values (p_user_id, p_status, now())
  on conflict (user_id) do update
    set status = excluded.status,
        last_ping = excluded.last_ping;

  select * from presently.status_counts;
$$;

-- Forget every user and every record of them. Later migrations that keep more records about
-- users extend this function, so that clearing stays one call.
create function presently.clear_all()
returns void
language sql
volatile
as $$
  truncate presently.presence;
$$;
