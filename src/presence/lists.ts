import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import { toPresence, type UserPresence } from './repository.js';
import { type ListFilter, prefixUpperBound } from './validation.js';

// Lists read in pieces: named users, pages, and the whole list as chunks of JSON text. Every
// read goes through presently.user_status, ordered by user_id in its own collation ("C", byte
// order), so that a page, a chunk and the whole list agree, and the presence table's primary
// key serves `user_id > $after order by user_id limit $n` (a keyset: no offset to skip).

/** The statuses of the known users among `ids`, each once, ordered by id. */
export async function readStatuses(db: Kysely<Database>, ids: string[]): Promise<UserPresence[]> {
  const rows = await db
    .selectFrom('presently.user_status')
    .select(['user_id as user', 'status', 'time', 'message'])
    .where('user_id', '=', sql<string>`any(${ids}::text[])`)
    .orderBy('user_id')
    .execute();
  return rows.map(toPresence);
}

export interface ListPage {
  users: UserPresence[];
  /** The last id of this page when more may follow; undefined on the last page. */
  continueAfter?: string;
}

/** The ids a prefix search covers, as a range of the primary key: see prefixUpperBound. */
function prefixRange(prefix: string | undefined) {
  if (prefix === undefined) return sql``;
  const upper = prefixUpperBound(prefix);
  return sql`and user_id >= ${prefix}${upper === undefined ? sql`` : sql` and user_id < ${upper}`}`;
}

/**
 * Users after `after` (from the start when undefined), `limit` at most; with `prefix`, only
 * those whose id starts with it (a range scan of the primary key, not a pattern).
 */
export async function readListPage(
  db: Kysely<Database>,
  filter: ListFilter,
  page: { limit: number; after?: string | undefined; prefix?: string | undefined },
): Promise<ListPage> {
  let query = db
    .selectFrom('presently.user_status')
    .select(['user_id as user', 'status', 'time', 'message'])
    .orderBy('user_id')
    // One more than asked for tells whether another page follows, without a page that is empty.
    .limit(page.limit + 1);
  if (filter !== 'all') query = query.where('status', '=', filter);
  if (page.after !== undefined) query = query.where('user_id', '>', page.after);
  if (page.prefix !== undefined)
    query = query.where(sql<boolean>`true ${prefixRange(page.prefix)}`);
  const rows = (await query.execute()).map(toPresence);
  if (rows.length <= page.limit) return { users: rows };
  const users = rows.slice(0, page.limit);
  return { users, continueAfter: users.at(-1)?.user };
}

/** Rows turned into JSON per statement when the whole list is streamed. */
export const LIST_CHUNK_ROWS = 1_000;

/**
 * The whole list as JSON text, one chunk per statement: each chunk is the next `chunkRows`
 * users' objects, comma-separated, written by PostgreSQL (row_to_json, as in the socket
 * snapshots) so that the service never holds more than a chunk, nor builds an object per user.
 * Each chunk is one consistent read; the list as a whole is not one instant (users may come,
 * go or change between chunks), but being a keyset in id order, no user is listed twice and
 * none that exists throughout is missed. Between chunks no connection is held, so a slow reader
 * costs the pool nothing.
 */
export async function* listJsonChunks(
  db: Kysely<Database>,
  filter: ListFilter,
  chunkRows = LIST_CHUNK_ROWS,
  prefix?: string,
): AsyncGenerator<string> {
  let after: string | undefined;
  for (;;) {
    const { rows } = await sql<{ json: string | null; last: string | null; rows: number }>`
      select string_agg(json_strip_nulls(row_to_json(u))::text, ',' order by u."user") as json,
             max(u."user") as last,
             count(*)::int as rows
      from (
        select user_id as "user", status, "time", message
        from presently.user_status
        where true
          ${filter === 'all' ? sql`` : sql`and status = ${filter}`}
          ${after === undefined ? sql`` : sql`and user_id > ${after}`}
          ${prefixRange(prefix)}
        order by user_id
        limit ${chunkRows}
      ) u
    `.execute(db);
    const chunk = rows[0];
    if (!chunk?.json || chunk.last === null) return;
    yield chunk.json;
    if (chunk.rows < chunkRows) return;
    after = chunk.last;
  }
}
