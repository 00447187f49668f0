import { type Kysely, sql } from 'kysely';
import type { Database } from '../../src/db/schema.js';
import { presenceRows } from '../helpers/database.js';

// What the database holds, before and after a request or a frame: a refused one must change
// none of it, an accepted one only what it names.

export type PresenceRow = Awaited<ReturnType<typeof presenceRows>>[number];

export interface State {
  presence: PresenceRow[];
  log: { count: number; max: string | null };
}

export async function storedState(db: Kysely<Database>): Promise<State> {
  const presence = await presenceRows(db);
  const { rows } = await sql<State['log']>`
    select count(*)::int as count, max(position)::text as max from presently.status_changes
  `.execute(db);
  return { presence, log: rows[0] as State['log'] };
}
