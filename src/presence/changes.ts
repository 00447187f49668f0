import { type Kysely, sql } from 'kysely';
import type { Database, Status } from '../db/schema.js';

// The change log (presently.status_changes) as the service reads it. Triggers write the log;
// here it is only read, and the sweep asked to run.

/** The channel the log's triggers notify on; a notification only says "read the log". */
export const CHANGES_CHANNEL = 'presently_status_changes';

export type StatusChange =
  | {
      kind: 'change';
      position: number;
      user: string;
      /** null: the user was removed. */
      status: Status | null;
      /** null: a new user. */
      previous: Status | null;
      /** Unix time of the change, whole seconds. */
      time: number;
      /** The user's status message as of the change (null: none). */
      message: string | null;
      /** Seconds from the change to its being read, by the database clock (for metrics). */
      age: number;
    }
  | { kind: 'cleared'; position: number; time: number; age: number };

/** The last position in the log, 0 for an empty one: where a new reader starts. */
export async function latestPosition(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('presently.status_changes')
    .select((eb) => eb.fn.coalesce(eb.fn.max('position'), eb.lit(0)).as('position'))
    .executeTakeFirstOrThrow();
  return Number(row.position);
}

/** Which database the log belongs to, and where it really ends (migrations/0008). */
export interface LogState {
  identity: string;
  end: number;
}

export async function readLogState(db: Kysely<Database>): Promise<LogState> {
  const { rows } = await sql<{ identity: string; log_end: number }>`
    select identity, log_end from presently.log_state()`.execute(db);
  const row = rows[0];
  if (!row) throw new Error('presently.log_state() answered nothing');
  return { identity: row.identity, end: Number(row.log_end) };
}

/** Up to `limit` changes after `position`, in order. */
export async function readChangesAfter(
  db: Kysely<Database>,
  position: number,
  limit: number,
): Promise<StatusChange[]> {
  const rows = await db
    .selectFrom('presently.status_changes')
    .select([
      'position',
      'user_id',
      'status',
      'previous',
      'message',
      sql<number>`floor(extract(epoch from changed_at))::bigint`.as('time'),
      // clock_timestamp(): the moment of reading, from the same clock that dated the change.
      sql<number>`extract(epoch from clock_timestamp() - changed_at)::float8`.as('age'),
    ])
    .where('position', '>', position)
    .orderBy('position')
    .limit(limit)
    .execute();
  return rows.map(({ position, user_id, status, previous, message, time, age }) =>
    user_id === null
      ? { kind: 'cleared', position, time, age }
      : { kind: 'change', position, user: user_id, status, previous, time, age, message },
  );
}

/** Marks users whose timeout has passed as away (the log's triggers announce it). */
export async function sweepAway(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ swept: number }>`select presently.sweep_away() as swept`.execute(db);
  return rows[0]?.swept ?? 0;
}
