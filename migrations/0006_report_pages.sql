-- Pages of the activity report that cost what they show (issue 19).
--
-- The API pages reporting.activity by (day, user). Filtering the whole report by a cursor made
-- every page compute the whole period again: over 30 days and 100,000 users, more than the
-- statement timeout, even for `limit=1`. This function walks the period a day at a time, from
-- the cursor's day on, and stops once it has p_limit rows: a page computes the days it shows
-- (and the rest of the cursor's day), however long the period.
--
-- Each day is reporting.activity itself over that day's part of the period, so a page holds
-- exactly the rows the whole report has for it: the report cuts every interval at each
-- midnight anyway, and a day's seconds depend on nothing outside the day. The zone is read
-- once, so that every day of a page is split by the same midnights.
--
-- With p_user_id (one user's report) the rows are few and the day walk would only repeat the
-- index scan per day: the whole period is computed once, as before.
--
-- Internal (the API's), in `presently`: the stable `reporting` schema is unchanged.
create function presently.activity_page(
  p_from timestamptz,
  p_to timestamptz,
  p_user_id text,
  p_after_day date,
  p_after_user text,
  p_limit integer
)
returns table (
  user_id text,
  day date,
  available_seconds double precision,
  busy_seconds double precision,
  away_seconds double precision
)
language plpgsql
stable
as $$
declare
  zone text := reporting.report_zone();
  last_day date := ((p_to - interval '1 microsecond') at time zone zone)::date;
  current_day date := greatest((p_from at time zone zone)::date, p_after_day);
  wanted integer := p_limit;
  taken integer;
begin
  if p_user_id is not null then
    return query
      select a.user_id, a.day, a.available_seconds, a.busy_seconds, a.away_seconds
      from reporting.activity(p_from, p_to, zone, p_user_id) a
      where p_after_day is null
         or (a.day, a.user_id collate "C") > (p_after_day, p_after_user collate "C")
      order by a.day, a.user_id collate "C"
      limit p_limit;
    return;
  end if;
  while current_day <= last_day and wanted > 0 loop
    return query
      select a.user_id, a.day, a.available_seconds, a.busy_seconds, a.away_seconds
      from reporting.activity(
        greatest(p_from, current_day::timestamp at time zone zone),
        least(p_to, (current_day + 1)::timestamp at time zone zone),
        zone
      ) a
      where p_after_day is null
         or (a.day, a.user_id collate "C") > (p_after_day, p_after_user collate "C")
      order by a.day, a.user_id collate "C"
      limit wanted;
    get diagnostics taken = row_count;
    wanted := wanted - taken;
    current_day := current_day + 1;
  end loop;
end;
$$;
