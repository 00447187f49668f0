import { type Kysely, sql } from 'kysely';
import type { Database, Status } from '../db/schema.js';
import type { Period } from './period.js';

// History as the API serves it: read from the change log and the reporting functions, which
// carry every rule (interval ends, day boundaries); nothing is recomputed here.

/** Known now, or still present in the history (a user removed with SQL). */
export async function isKnownUser(db: Kysely<Database>, user: string): Promise<boolean> {
  const { rows } = await sql<{ known: boolean }>`
    select exists (select from presently.presence where user_id = ${user})
        or exists (select from presently.status_changes where user_id = ${user}) as known
  `.execute(db);
  return rows[0]?.known ?? false;
}

export interface StatusInterval {
  status: Status;
  started: Date;
  /** null while it lasts. */
  ended: Date | null;
  /** Seconds, up to now for an interval that lasts. */
  duration: number;
}

/**
 * A user's intervals overlapping the period, in order, `limit` at most, after the position a
 * previous page ended at. Answers the page and the position to continue after, if any.
 */
export async function readUserHistory(
  db: Kysely<Database>,
  user: string,
  period: Period,
  page: { limit: number; after: number },
): Promise<{ intervals: StatusInterval[]; continueAfter: number | undefined }> {
  const rows = await db
    .selectFrom('presently.status_changes')
    .select([
      'position',
      'status',
      'changed_at as started',
      'ended_at as ended',
      sql<number>`extract(epoch from coalesce(ended_at, now()) - changed_at)::float8`.as(
        'duration',
      ),
    ])
    .where('user_id', '=', user)
    .where('status', 'is not', null)
    .where('changed_at', '<', sql<Date>`${period.to}::timestamptz`)
    // An interval that lasts ends now, as far as a period is concerned.
    .where(sql<boolean>`coalesce(ended_at, now()) > ${period.from}::timestamptz`)
    .where('position', '>', page.after)
    .orderBy('position')
    .limit(page.limit + 1)
    .execute();
  const more = rows.length > page.limit;
  const shown = rows.slice(0, page.limit);
  return {
    intervals: shown.map(({ status, started, ended, duration }) => ({
      status: status as Status,
      started,
      ended,
      duration,
    })),
    continueAfter: more ? shown.at(-1)?.position : undefined,
  };
}

export interface DailyActivity {
  user: string;
  /** The day in REPORT_TIMEZONE, YYYY-MM-DD. */
  day: string;
  available: number;
  busy: number;
  away: number;
}

export interface ActivityPage {
  rows: DailyActivity[];
  /** Where the next page starts after, if there is one. */
  continueAfter: { day: string; user: string } | undefined;
}

/**
 * Seconds per status per user and day (reporting.activity), ordered by day then user: a page of
 * `limit` rows after `after`. presently.activity_page computes only the days the page shows.
 */
export async function readActivity(
  db: Kysely<Database>,
  period: Period,
  options: { user?: string; limit: number; after?: { day: string; user: string } },
): Promise<ActivityPage> {
  const { user, limit, after } = options;
  const { rows } = await sql<DailyActivity>`
    select
      a.user_id as "user",
      to_char(a.day, 'YYYY-MM-DD') as day,
      a.available_seconds as available,
      a.busy_seconds as busy,
      a.away_seconds as away
    from presently.activity_page(
      ${period.from}::timestamptz, ${period.to}::timestamptz, ${user ?? null}::text,
      ${after?.day ?? null}::date, ${after?.user ?? null}::text, ${limit + 1}::integer
    ) a
    order by a.day, a.user_id collate "C"
  `.execute(db);
  const more = rows.length > limit;
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return {
    rows: shown,
    continueAfter: more && last ? { day: last.day, user: last.user } : undefined,
  };
}

export interface OnlineHour {
  /** The hour's start. */
  hour: Date;
  /** Users available or busy at some moment of the hour. */
  online: number;
  /** The most online at one moment of the hour. */
  peak: number;
}

/**
 * Online users per hour over the period (hours of REPORT_TIMEZONE, up to now), from
 * reporting.concurrency: the SQL function analysts use, so that the chart and their queries
 * agree.
 */
export async function readOnlineHours(db: Kysely<Database>, period: Period): Promise<OnlineHour[]> {
  const { rows } = await sql<OnlineHour>`
    select c.hour, c.online_users::int as online, c.peak_online::int as peak
    from reporting.concurrency(${period.from}::timestamptz, ${period.to}::timestamptz) c
    order by c.hour
  `.execute(db);
  return rows;
}

/** Positions at or before this one may have been pruned: a socket cannot resume from them. */
export async function readHistoryHorizon(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('presently.history_pruned')
    .select((eb) => eb.fn.coalesce(eb.fn.max('pruned_through'), eb.lit(0)).as('horizon'))
    .executeTakeFirstOrThrow();
  return Number(row.horizon);
}
