-- The away sweep, cheaper per user.
--
-- The planner must know that presently.settings and presently.status_totals hold one row each.
--
-- Both are joined to the presence table: the status views and the away sweep cross join the
-- settings, and every ping's answer reads the totals. Tables that were never analyzed are
-- guessed at about a thousand rows, and autovacuum never analyzes them: a row updated now and
-- then never reaches its threshold. So a sweep over 20,000 users was costed as a join of twenty
-- million rows, and on a server built with JIT (PostgreSQL 15 from Debian, for one) it was
-- compiled to machine code every second, and optimized too from about a million users: far
-- more work than the scan itself. Statistics taken once stay: these rows are updated, never
-- added or removed.
analyze presently.settings;
analyze presently.status_totals;

-- The sweep scans every user each second (an index on last_ping would make every heartbeat
-- update it, where they now stay on their page). What it costs per user is what matters: the
-- timeout is read once, as a scalar, so each row is one comparison with a constant instead of
-- a join with the settings row and an interval computed per row. 300,000 users: 15 ms a sweep
-- instead of 37. Locking and dating are unchanged (see 0002).
create or replace function presently.sweep_away()
returns integer
language sql
volatile
as $$
  select 1 from presently.settings for share;

  with due as (
    select p.user_id, p.last_ping
    from presently.presence p
    where p.last_ping < now() - (select away_timeout from presently.settings)
      and p.logged_status <> 'away'
    for update of p skip locked
  ),
  swept as (
    update presently.presence p
    -- Never dated before the change it follows (a timeout lowered after a user was logged back).
    set logged_status = 'away',
        logged_at = greatest(due.last_ping + (select away_timeout from presently.settings),
                             p.logged_at)
    from due
    where p.user_id = due.user_id
    returning 1
  )
  select count(*)::integer from swept;
$$;
