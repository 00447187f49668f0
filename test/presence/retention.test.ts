import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { readHistoryHorizon } from '../../src/presence/history.js';
import { pruneAllHistory } from '../../src/presence/retention.js';
import { useTestDatabase } from '../helpers/database.js';

// The service's pruning loop over presently.prune_history: batches until nothing is left.

const database = useTestDatabase();

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(database.db);
});

/** `users` users, each with an interval that ended `days` ago and one still open. */
async function history(prefix: string, users: number, days: number): Promise<void> {
  await sql`
    select presently.append_change(${prefix} || g, 'available', null, now() - make_interval(days => ${days + 1})),
           presently.append_change(${prefix} || g, 'away', 'available', now() - make_interval(days => ${days}))
    from generate_series(1, ${users}) g
  `.execute(database.db);
}

const rowsLeft = async () => {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from presently.status_changes where user_id is not null
  `.execute(database.db);
  return rows[0]?.n;
};

describe('pruneAllHistory', () => {
  it('prunes in batches until nothing past the retention is left', async () => {
    await history('old-', 12, 10);
    await history('recent-', 3, 1);
    expect(await pruneAllHistory(database.db, 5, { batchSize: 5 })).toBe(12);
    // The 12 old intervals are gone; the open ones (12 + 3) and the 3 recent ones stay.
    expect(await rowsLeft()).toBe(12 + 3 + 3);
    expect(await readHistoryHorizon(database.db)).toBeGreaterThan(0);
    expect(await pruneAllHistory(database.db, 5, { batchSize: 5 })).toBe(0);
  });

  it('stops between batches when asked to', async () => {
    await history('old-', 12, 10);
    expect(await pruneAllHistory(database.db, 5, { batchSize: 5, shouldStop: () => true })).toBe(5);
    expect(await rowsLeft()).toBe(24 - 5);
  });
});
