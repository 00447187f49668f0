-- The database's identity (issue "Nothing lost", part 3).
--
-- Every instance reads the change log after the last position it has seen. That is safe only
-- while the log it reads is the one it read before. Two things can put another log under a
-- running service without it noticing:
-- - an older copy of the same database: a dump restored, an asynchronous replica promoted
--   after a failover that lost the last commits. Its log ends before the position read, and
--   its sequence hands out positions that were already used;
-- - another database altogether, behind the same address. Its log may run past the position
--   read, so the end alone does not tell.
-- The identity tells the second: a random value made once, when this migration runs, and kept
-- by anything that copies the database (dump, replica), so a copy of the same database has the
-- same identity and another database has another. The log's end tells the first.
--
-- 0007 is taken by another change in progress; numbers only need to be increasing.

create table presently.database_identity (
  -- One row, ever: the primary key on a constant makes a second row impossible.
  only_row boolean primary key default true check (only_row),
  identity uuid not null default gen_random_uuid(),
  created_at timestamptz not null default now()
);

insert into presently.database_identity default values;

-- What a reader checks, in one round trip: the identity and the real end of the log. Pruning
-- can empty the log, so the end is the later of its last position and the pruning horizon
-- (every position up to the horizon existed). A clear leaves a marker row, so the end never
-- goes back in a database that stays the same one.
create function presently.log_state(out identity uuid, out log_end bigint)
language sql
stable
as $$
  select
    (select d.identity from presently.database_identity d),
    greatest(
      (select coalesce(max(c.position), 0) from presently.status_changes c),
      (select coalesce(max(h.pruned_through), 0) from presently.history_pruned h)
    )
$$;
