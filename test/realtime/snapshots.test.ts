import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { typicalCost } from '../../src/pacing.js';
import { createSnapshotPump } from '../../src/realtime/snapshots.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { onFirstResult, useLoopbackHub } from '../helpers/loopback-hub.js';
import { isEvent } from '../helpers/socket.js';

// The snapshot pump (src/realtime/snapshots.ts) in process, over a real socket: however changes fall
// between its reads, one snapshot always follows the last change.

const database = useTestDatabase();
const loopback = useLoopbackHub();

describe('the snapshot pump', () => {
  it('reads again after a read during which something changed', async () => {
    const hub = await loopback.start();
    const { client, peer } = await loopback.connect();
    // The change commits once the first snapshot has been read, before the pump has it: that
    // snapshot cannot include it, so another must follow.
    const changeDuringRead = async () => {
      await sql`insert into presently.presence (user_id, status, last_ping)
        values ('late', 'busy', now())`.execute(database.db);
      pump.changed();
    };
    const db = database.db.withPlugin(onFirstResult(['list', 'counts'], changeDuringRead));
    const pump = createSnapshotPump({ db, hub, logger: silentLogger, intervalMs: 50 });
    loopback.onStop(() => pump.stop());

    pump.welcome(peer);
    const first = await client.next(isEvent('online-users-list'));
    expect(first.data).toEqual([]);
    const after = await client.next(
      isEvent('online-users-list', (list) => list.length > 0),
      5_000,
    );
    expect(after.data).toEqual([expect.objectContaining({ user: 'late', status: 'busy' })]);
  });
});

describe('a subscription', () => {
  it('made while the round welcoming the socket is being read is answered by the next round', async () => {
    const hub = await loopback.start();
    const { client, peer } = await loopback.connect();
    // The socket follows nobody (counts only); it subscribes to 'x' while its first counts are
    // being read: the subscription's answer, a list, must still come.
    const subscribeDuringRead = async () => {
      pump.watch.set(peer, new Set(['x']));
      pump.welcome(peer, true);
    };
    const db = database.db.withPlugin(onFirstResult(['counts'], subscribeDuringRead));
    const pump = createSnapshotPump({ db, hub, logger: silentLogger, intervalMs: 50 });
    loopback.onStop(() => pump.stop());

    pump.watch.set(peer, new Set());
    pump.welcome(peer);
    await client.next(isEvent('online-users-count'));
    const answer = await client.next(isEvent('online-users-list'), 5_000);
    expect(answer.data).toEqual([]);
  });
});

describe('the cost a snapshot is judged by', () => {
  it('is not thrown by one round slowed by a stalled database, but follows a list that grew', () => {
    // A 5 ms list, then one round that took 6 s (the database frozen meanwhile).
    expect(typicalCost(5, 6_000, 250)).toBeLessThan(100);
    // A list that really grew to cost 3 s a round: followed within a few rounds.
    let cost = 5;
    for (let round = 0; round < 8; round++) cost = typicalCost(cost, 3_000, 250);
    expect(cost).toBeGreaterThan(2_000);
    // The first round of all counts at most one interval.
    expect(typicalCost(0, 6_000, 250)).toBe(250);
  });
});
