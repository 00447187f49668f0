import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';

/**
 * Deletes up to `batchSize` log rows that ended more than `keepDays` ago (open intervals are
 * kept) and answers how many. Safe from several instances at once: see presently.prune_history.
 */
export async function pruneHistory(
  db: Kysely<Database>,
  keepDays: number,
  batchSize: number,
): Promise<number> {
  const { rows } = await sql<{ pruned: number }>`
    select presently.prune_history(make_interval(days => ${keepDays}), ${batchSize}) as pruned
  `.execute(db);
  return rows[0]?.pruned ?? 0;
}

/**
 * Prunes in batches until nothing is left to prune, so that no single statement holds many row
 * locks or runs long, whatever the backlog (a first start with a long history, a shortened
 * retention). Answers the total.
 */
export async function pruneAllHistory(
  db: Kysely<Database>,
  keepDays: number,
  options: { batchSize?: number; shouldStop?: () => boolean } = {},
): Promise<number> {
  const batchSize = options.batchSize ?? 5_000;
  let total = 0;
  for (;;) {
    const pruned = await pruneHistory(db, keepDays, batchSize);
    total += pruned;
    if (pruned < batchSize || options.shouldStop?.()) break;
  }
  // Session and override intervals (reports of devices and do-not-disturb) age out with it:
  // far fewer rows than the log, pruned in one statement.
  await sql`
    select presently.prune_session_history(make_interval(days => ${keepDays}))
  `.execute(db);
  return total;
}
