import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';

// Snapshot payloads as JSON text built by PostgreSQL, through the views that derive every
// status, ready to be framed without being parsed and serialised again (see also
// readSnapshotJson in repository.ts, the whole list and the counts in one statement).

/**
 * The counts payload, `{"available", "busy", "away"}`, in O(1) from the totals the log's
 * triggers keep (migrations/0004), as ping answers are. They differ from the status_counts view
 * only for users whose timeout has passed and whom the sweep has not yet marked away, which is
 * itself a change still to come: a counts snapshot agrees with the changes sent before it.
 */
export async function readCountsJson(db: Kysely<Database>): Promise<string> {
  const { rows } = await sql<{ counts: string }>`
    select json_build_object('available', t.available, 'busy', t.busy, 'away', t.away)::text
      as counts
    from presently.status_totals t
  `.execute(db);
  const counts = rows[0]?.counts;
  if (counts === undefined) throw new Error('the counts query returned no row');
  return counts;
}

/**
 * The list items of the known users among `users`, each as JSON text, in the list's order (by
 * id, as `GET /users/list/all` and the whole-list snapshot order them). One indexed read for any
 * number of watch lists: callers pass the union of the ids they need.
 */
export async function readUsersJson(
  db: Kysely<Database>,
  users: readonly string[],
): Promise<{ user: string; json: string }[]> {
  if (users.length === 0) return [];
  const { rows } = await sql<{ user: string; json: string }>`
    select u."user", json_strip_nulls(row_to_json(u))::text as json
    from (
      select user_id as "user", status, "time", message
      from presently.user_status
      where user_id = any(${users as string[]}::text[])
    ) u
    order by u."user"
  `.execute(db);
  return rows;
}
