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
