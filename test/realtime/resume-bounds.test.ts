import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { latestPosition, readChangesAfter } from '../../src/presence/changes.js';
import { createBroadcaster } from '../../src/realtime/broadcaster.js';
import type { Peer } from '../../src/realtime/hub.js';
import { resume } from '../../src/realtime/resume.js';
import { createSnapshotPump } from '../../src/realtime/snapshots.js';
import { logPositionsAfter, silentLogger, useTestDatabase } from '../helpers/database.js';
import { onFirstResult, useLoopbackHub } from '../helpers/loopback-hub.js';
import { type Frame, isEvent } from '../helpers/socket.js';

// The bounds of a socket catching up with `?since=` (src/realtime/resume.ts), in process: the hub,
// broadcaster and catch-up as main.ts wires them, a real socket over loopback, and changes
// published from the log by hand where the change feed would publish them.

const database = useTestDatabase();
const loopback = useLoopbackHub();
const BOUND = 1024 * 1024;

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(database.db);
});

/** The hub and broadcaster, and a client whose server side (its peer) is registered. */
async function connect() {
  const { db } = database;
  const hub = await loopback.start({ maxBufferedBytes: BOUND });
  const snapshots = createSnapshotPump({ db, hub, logger: silentLogger, intervalMs: 250 });
  loopback.onStop(() => snapshots.stop());
  const broadcaster = createBroadcaster({ hub, snapshots });
  const connected = await loopback.connect();
  // As the endpoint does at open: the socket follows everyone (the default).
  broadcaster.follow(connected.peer, 'all');
  return { hub, broadcaster, ...connected };
}

/** `count` changes in one transaction, with ids as long as allowed (large frames). */
async function addUsers(prefix: string, count: number): Promise<void> {
  await sql`
    insert into presently.presence (user_id, status, last_ping)
    select rpad(${prefix} || g, 128, '.'), 'available', now() from generate_series(1, ${count}) g
  `.execute(database.db);
}

const positions = (frames: Frame[]) =>
  frames.filter((f) => f.event === 'presence-change').map((f) => f.data.position as number);

const heldBytes = (peer: Peer) =>
  (peer.held ?? []).reduce((sum, change) => sum + change.frame.length, 0);

describe('the live changes held for a catching-up socket', () => {
  it('stay within the memory bound of unsent bytes, and none is lost or sent twice', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    const since = await latestPosition(database.db);
    await addUsers('missed-', 10);

    // Live changes arrive while the catch-up's read is on its way: more than the bound, in
    // batches as the change feed reads them, each committed (in the log) before it is published.
    let published = await latestPosition(database.db);
    let mostHeld = 0;
    const stream = async () => {
      for (let i = 0; i < 8; i++) {
        await addUsers(`live-${i}-`, 1_000);
        for (;;) {
          const changes = await readChangesAfter(database.db, published, 1_000);
          if (changes.length === 0) break;
          published = changes.at(-1)?.position ?? published;
          broadcaster.publish(changes);
          mostHeld = Math.max(mostHeld, heldBytes(peer));
        }
      }
    };
    const db = database.db.withPlugin(onFirstResult(['user_id', 'position'], stream));
    await resume({ db, hub, broadcaster, logger: silentLogger }, peer, since);

    const expected = await logPositionsAfter(database.db, since);
    expect(expected.length).toBe(10 + 8_000);
    await client.next(
      isEvent('presence-change', (d) => d.position === expected.at(-1)),
      20_000,
    );
    expect(positions(client.frames)).toEqual(expected);
    expect(mostHeld).toBeGreaterThan(0);
    expect(mostHeld).toBeLessThanOrEqual(BOUND);
    expect(peer.held).toBeUndefined();
  });
});

describe('a socket too far behind', () => {
  it('gets a resync, then live changes and snapshots, rather than every change', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    const since = await latestPosition(database.db);
    await addUsers('missed-', 11);
    const deps = { db: database.db, hub, broadcaster, logger: silentLogger, maxReplayChanges: 10 };
    await resume(deps, peer, since);
    const resync = await client.next(isEvent('resync'));
    expect(resync.data).toEqual({ position: since + 11, reason: 'too_far_behind' });
    await client.next(isEvent('online-users-count'));
    expect(positions(client.frames)).toEqual([]);
    expect(client.frames[0]?.event).toBe('resync');
  });

  it('is caught up when it is no further behind than the bound', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    const since = await latestPosition(database.db);
    await addUsers('missed-', 10);
    const deps = { db: database.db, hub, broadcaster, logger: silentLogger, maxReplayChanges: 10 };
    await resume(deps, peer, since);
    await client.next(isEvent('online-users-count'));
    expect(client.all('resync')).toEqual([]);
    expect(positions(client.frames)).toEqual(await logPositionsAfter(database.db, since));
  });
});
