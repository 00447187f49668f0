import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { latestPosition, readChangesAfter } from '../../src/presence/changes.js';
import { type Broadcaster, createBroadcaster } from '../../src/ws/broadcaster.js';
import type { Peer, SocketHub } from '../../src/ws/hub.js';
import { hold, parseSince, resume } from '../../src/ws/resume.js';
import { createSnapshotPump } from '../../src/ws/snapshots.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { onFirstResult, useLoopbackHub } from '../helpers/loopback-hub.js';
import { type Frame, isEvent } from '../helpers/socket.js';

// The bounds of a socket catching up with `?since=` (src/ws/resume.ts), in process: the hub,
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

async function logPositionsAfter(position: number): Promise<number[]> {
  const { rows } = await sql<{ position: string }>`
    select position from presently.status_changes where position > ${position} order by position
  `.execute(database.db);
  return rows.map((row) => Number(row.position));
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

    const expected = await logPositionsAfter(since);
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
    expect(positions(client.frames)).toEqual(await logPositionsAfter(since));
  });
});

describe('?since=', () => {
  it('is a whole number of at most 15 digits', () => {
    expect(parseSince(undefined)).toBeUndefined();
    expect(parseSince('0')).toBe(0);
    expect(parseSince('42')).toBe(42);
    expect(parseSince('999999999999999')).toBe(999_999_999_999_999);
    for (const text of ['', '-1', '1.5', ' 1', '1 ', '1e3', 'x1', '1x', '1000000000000000']) {
      expect(() => parseSince(text), text).toThrow(
        expect.objectContaining({ code: 'invalid_since', status: 400 }),
      );
    }
  });
});

describe('the position a socket resumes from', () => {
  const deps = (hub: SocketHub, broadcaster: Broadcaster, db = database.db) => ({
    db,
    hub,
    broadcaster,
    logger: silentLogger,
  });

  it('before the history horizon (pruned) gets a resync to the latest position', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    await addUsers('kept-', 3);
    const latest = await latestPosition(database.db);
    await sql`insert into presently.history_pruned values (${latest - 1})`.execute(database.db);
    await resume(deps(hub, broadcaster), peer, latest - 2);
    expect((await client.next(isEvent('resync'))).data).toEqual({
      position: latest,
      reason: 'pruned',
    });
    await client.next(isEvent('online-users-count'));
    expect(positions(client.frames)).toEqual([]);
  });

  it('at the horizon is served, even when pruning emptied the log', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    await addUsers('gone-', 2);
    await sql`select presently.clear_all()`.execute(database.db);
    await sql`select presently.prune_history(interval '0 seconds', 1000)`.execute(database.db);
    expect(await latestPosition(database.db)).toBe(0);
    const { rows } = await sql<{ horizon: string }>`
      select max(pruned_through) as horizon from presently.history_pruned`.execute(database.db);
    const horizon = Number(rows[0]?.horizon);
    expect(horizon).toBeGreaterThan(0);
    await resume(deps(hub, broadcaster), peer, horizon);
    await client.next(isEvent('online-users-count'));
    expect(client.all('resync')).toEqual([]);
    expect(positions(client.frames)).toEqual([]);
    expect(peer.held).toBeUndefined();
  });

  it('past the latest one (unknown) gets a resync; the latest itself replays nothing', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    await addUsers('known-', 2);
    const latest = await latestPosition(database.db);
    await resume(deps(hub, broadcaster), peer, latest + 1);
    expect((await client.next(isEvent('resync'))).data).toEqual({
      position: latest,
      reason: 'unknown_position',
    });

    const other = await loopback.connect();
    broadcaster.follow(other.peer, 'all');
    await resume(deps(hub, broadcaster), other.peer, latest);
    await other.client.next(isEvent('online-users-count'));
    expect(other.client.frames.filter((f) => f.event.startsWith('presence-'))).toEqual([]);
    expect(other.client.all('resync')).toEqual([]);
    expect(other.peer.deliveredThrough).toBe(latest);
  });

  it('replays more than a batch in order, and only the users the socket follows', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    const since = await latestPosition(database.db);
    await addUsers('many-', 2_500);
    const expected = await logPositionsAfter(since);
    await resume(deps(hub, broadcaster), peer, since);
    await client.next(isEvent('presence-change', (d) => d.position === expected.at(-1)));
    expect(positions(client.frames)).toEqual(expected);
    expect(peer.deliveredThrough).toBe(expected.at(-1));

    const follower = await loopback.connect();
    broadcaster.follow(follower.peer, new Set(['many-1'.padEnd(128, '.')]));
    await resume(deps(hub, broadcaster), follower.peer, since);
    await follower.client.next(isEvent('online-users-count'));
    expect(follower.client.all('presence-change').map((f) => f.data.user)).toEqual([
      'many-1'.padEnd(128, '.'),
    ]);
  });

  it('closes the socket with 1013 when the log cannot be read, holding nothing', async () => {
    const { hub, broadcaster, peer, client } = await connect();
    const failing = database.db.withPlugin({
      transformQuery: (args) => args.node,
      async transformResult() {
        throw new Error('the database failed this read');
      },
    });
    await resume(deps(hub, broadcaster, failing), peer, 0);
    expect((await client.closed).code).toBe(1013);
    expect(peer.held).toBeUndefined();
    expect(peer.heldBytes).toBeUndefined();
    expect(peer.droppedThrough).toBeUndefined();
  });
});

describe('holding a live change', () => {
  const frame = Buffer.alloc(10);

  it('holds nothing for a socket not catching up', () => {
    const peer = { deliveredThrough: 0 } as Peer;
    hold(peer, 1, frame, 100);
    expect(peer.held).toBeUndefined();
    expect(peer.heldBytes).toBeUndefined();
  });

  it('holds up to exactly the bound, then lets everything go and notes how far', () => {
    const peer = { held: [], heldBytes: 0, droppedThrough: 0 } as unknown as Peer;
    hold(peer, 1, frame, 20);
    hold(peer, 2, frame, 20);
    expect(peer.held?.map((change) => change.position)).toEqual([1, 2]);
    expect(peer.heldBytes).toBe(20);
    hold(peer, 3, frame, 20);
    expect(peer.held).toEqual([]);
    expect(peer.heldBytes).toBe(0);
    expect(peer.droppedThrough).toBe(3);
  });
});
