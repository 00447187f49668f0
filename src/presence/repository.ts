import { type Kysely, sql } from 'kysely';
import type { Database, Status, StatusCountsView } from '../db/schema.js';
import { writePings } from './ping-writer.js';
import type { ListFilter, Ping } from './validation.js';

// Every status read here goes through the presently.user_status and presently.status_counts
// views: TypeScript never decides who is away.

export type StatusCounts = StatusCountsView;

export interface UserPresence {
  user: string;
  status: Status;
  time: number;
  /** Only while the user has a status message. */
  message?: string;
}

/** A row of presently.user_status as the API lists it: `message` only while one is set. */
export function toPresence(
  row: UserPresence | (Omit<UserPresence, 'message'> & { message: string | null }),
): UserPresence {
  const { message, ...presence } = row;
  return message == null ? presence : { ...presence, message };
}

/** Stores one ping at once and answers the counts that include it (see ping-writer.ts). */
export async function recordPing(db: Kysely<Database>, ping: Ping): Promise<StatusCounts> {
  return writePings(db, [ping]);
}

export async function countUsers(db: Kysely<Database>): Promise<StatusCounts> {
  return db
    .selectFrom('presently.status_counts')
    .select(['available', 'busy', 'away'])
    .executeTakeFirstOrThrow();
}

export async function listUsers(db: Kysely<Database>, filter: ListFilter): Promise<UserPresence[]> {
  let query = db
    .selectFrom('presently.user_status')
    .select(['user_id as user', 'status', 'time', 'message'])
    .orderBy('user_id');
  if (filter !== 'all') query = query.where('status', '=', filter);
  return (await query.execute()).map(toPresence);
}

/** Forgets every user and every record of them. */
export async function clearAll(db: Kysely<Database>): Promise<void> {
  await sql`select presently.clear_all()`.execute(db);
}

/**
 * Stores the away timeout where the views read it, restoring the settings row if someone
 * removed it. Returns the previous timeout in seconds (the new one if there was none).
 */
export async function setAwayTimeout(db: Kysely<Database>, seconds: number): Promise<number> {
  const { rows } = await sql<{ previous: number | null }>`
    with prior as (select away_timeout from presently.settings)
    insert into presently.settings (singleton, away_timeout)
    values (true, make_interval(secs => ${seconds}))
    on conflict (singleton) do update set away_timeout = excluded.away_timeout
    returning (select extract(epoch from away_timeout)::float8 from prior) as previous
  `.execute(db);
  return rows[0]?.previous ?? seconds;
}

/**
 * Stores the zone reports split days in. PostgreSQL must know the zone: converting a time to it
 * fails for one it does not know, and nothing is stored.
 */
export async function setReportTimezone(db: Kysely<Database>, zone: string): Promise<void> {
  await sql`
    update presently.settings
    set report_timezone = ${zone}
    where (now() at time zone ${zone}) is not null
  `.execute(db);
}

/** The seed's list and counts payloads as JSON text, built by PostgreSQL in one snapshot. */
export interface SnapshotJson {
  list: string;
  counts: string;
}

/**
 * Both payloads come from one statement, so they agree with each other, and arrive as JSON text
 * ready to be framed once for every socket, never parsed and serialised again in between.
 */
export async function readSnapshotJson(db: Kysely<Database>): Promise<SnapshotJson> {
  const { rows } = await sql<SnapshotJson>`
    select
      (select '[' || coalesce(string_agg(json_strip_nulls(row_to_json(u))::text, ','
                                         order by u."user"), '') || ']'
         from (select user_id as "user", status, "time", message from presently.user_status) u)
        as list,
      (select row_to_json(c)::text from presently.status_counts c) as counts
  `.execute(db);
  const snapshot = rows[0];
  if (!snapshot) throw new Error('the snapshot query returned no row');
  return snapshot;
}
