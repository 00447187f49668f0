import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { createMaintenance } from '../../src/presence/maintenance.js';
import { silentLogger } from '../helpers/database.js';
import { useRealtime } from '../helpers/realtime.js';
import { waitFor } from '../helpers/wait.js';

// The background work of every instance (src/presence/maintenance.ts): the away sweep and
// history pruning, started by the service with its HISTORY_RETENTION_DAYS.

const realtime = useRealtime();

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(realtime.db);
});

/** A user with an interval that ended `days` ago (then away, still open). */
async function endedDaysAgo(user: string, days: number): Promise<void> {
  await sql`
    select presently.append_change(${user}, 'available', null, now() - make_interval(days => ${days + 1})),
           presently.append_change(${user}, 'away', 'available', now() - make_interval(days => ${days}))
  `.execute(realtime.db);
}

/** The users whose first interval (the ended one) is still in the log. */
async function usersWithEndedIntervals(): Promise<string[]> {
  const { rows } = await sql<{ user_id: string }>`
    select user_id from presently.status_changes where user_id is not null and ended_at is not null order by user_id
  `.execute(realtime.db);
  return rows.map((row) => row.user_id);
}

const loggedStatus = async (user: string) => {
  const { rows } = await sql<{ logged_status: string }>`
    select logged_status from presently.presence where user_id = ${user}`.execute(realtime.db);
  return rows[0]?.logged_status;
};

describe('createMaintenance', () => {
  it('sweeps users away and prunes history past the retention it is given, once started', async () => {
    await endedDaysAgo('ten-days', 10);
    await endedDaysAgo('three-days', 3);
    await sql`insert into presently.presence (user_id, status, last_ping)
      values ('gone', 'busy', now() - interval '1 hour')`.execute(realtime.db);
    const maintenance = createMaintenance({
      db: realtime.db,
      logger: silentLogger,
      historyRetentionDays: 5,
      intervals: { sweepMs: 20, pruneMs: 20, firstPruneMs: 20 },
    });
    maintenance.start();
    try {
      await waitFor('the sweep', async () => (await loggedStatus('gone')) === 'away');
      await waitFor('pruning', async () => !(await usersWithEndedIntervals()).includes('ten-days'));
      expect(await usersWithEndedIntervals()).toEqual(['three-days']);
    } finally {
      await maintenance.stop();
    }
  });
});

describe('the service', () => {
  it('prunes history past HISTORY_RETENTION_DAYS soon after it starts', async () => {
    await endedDaysAgo('ten-days', 10);
    await endedDaysAgo('three-days', 3);
    const service = await realtime.start({ HISTORY_RETENTION_DAYS: '5' });
    await waitFor('pruning', async () => !(await usersWithEndedIntervals()).includes('ten-days'));
    expect(await usersWithEndedIntervals()).toEqual(['three-days']);
    expect(await service.stop()).toBe(0);
  });
});
