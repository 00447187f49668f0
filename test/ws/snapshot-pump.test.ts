import { setTimeout as sleep } from 'node:timers/promises';
import { type KyselyPlugin, sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { latestPosition, readChangesAfter } from '../../src/presence/changes.js';
import { createSnapshotPump } from '../../src/ws/snapshots.js';
import { silentLogger, useTestDatabase } from '../helpers/database.js';
import { useLoopbackHub } from '../helpers/loopback-hub.js';
import { type Frame, isEvent } from '../helpers/socket.js';

// The snapshot pump (src/ws/snapshots.ts) in process, over real sockets and a real database:
// who gets which list, reading again after a failure, and reusing a current list.
// (test/ws/socket.test.ts checks the same through the real service.)

const database = useTestDatabase();
const loopback = useLoopbackHub();

beforeEach(async () => {
  await sql`select presently.clear_all()`.execute(database.db);
});

const ping = (user: string, status: 'available' | 'busy') =>
  sql`select presently.ping(${user}, ${status})`.execute(database.db);

/** Pings, and the changes they logged, as the change feed would hand them to the pump. */
async function changesOf(pings: () => Promise<unknown>) {
  const before = await latestPosition(database.db);
  await pings();
  return readChangesAfter(database.db, before, 1_000);
}

/** Counts the statements the pump runs, and fails the next one when asked. */
function instrumented() {
  const state = { statements: 0, failNext: false };
  const plugin: KyselyPlugin = {
    transformQuery: (args) => {
      state.statements += 1;
      return args.node;
    },
    async transformResult({ result }) {
      if (state.failNext) {
        state.failNext = false;
        throw new Error('the database failed this read');
      }
      return result;
    },
  };
  return { db: database.db.withPlugin(plugin), state };
}

const users = (frame: Frame) => (frame.data as { user: string }[]).map((item) => item.user);
const lists = (frames: Frame[]) => frames.filter((frame) => frame.event === 'online-users-list');

async function start(options: { intervalMs?: number; retryMs?: number } = {}) {
  const hub = await loopback.start();
  const { db, state } = instrumented();
  const pump = createSnapshotPump({
    db,
    hub,
    logger: silentLogger,
    intervalMs: options.intervalMs ?? 50,
    retryMs: options.retryMs,
  });
  loopback.onStop(() => pump.stop());
  return { hub, pump, state };
}

describe('a socket following a list of users', () => {
  it('gets the list of its users only, again when one of them changes, not when others do', async () => {
    await ping('ann', 'available');
    await ping('bob', 'busy');
    await ping('zed', 'busy');
    const { pump } = await start();
    const { client, peer } = await loopback.connect();
    pump.watch.set(peer, new Set(['bob', 'ann', 'nobody']));
    pump.welcome(peer, true);
    const first = await client.next(isEvent('online-users-list'));
    expect(first.data).toEqual([
      expect.objectContaining({ user: 'ann', status: 'available' }),
      expect.objectContaining({ user: 'bob', status: 'busy' }),
    ]);
    const counts = await client.next(isEvent('online-users-count'));
    expect(counts.data).toEqual({ available: 1, busy: 2, away: 0 });

    // A user it does not follow: the counts change, its list is not sent again.
    pump.changed(await changesOf(() => ping('zed', 'available')));
    const zedCounts = await client.next(
      isEvent('online-users-count', (data) => data.available === 2),
    );
    expect(zedCounts.data).toEqual({ available: 2, busy: 1, away: 0 });
    await sleep(200);
    expect(lists(client.frames)).toHaveLength(1);

    pump.changed(await changesOf(() => ping('ann', 'busy')));
    const second = await client.next(isEvent('online-users-list'), 5_000, client.frames.length);
    expect(second.data).toEqual([
      expect.objectContaining({ user: 'ann', status: 'busy' }),
      expect.objectContaining({ user: 'bob', status: 'busy' }),
    ]);
  });

  it('gets an empty list when it asked (subscribe), and no list otherwise', async () => {
    await ping('ann', 'available');
    const { pump } = await start();
    const asked = await loopback.connect();
    const silent = await loopback.connect();
    pump.watch.set(asked.peer, new Set());
    pump.watch.set(silent.peer, new Set());
    pump.welcome(asked.peer, true);
    pump.welcome(silent.peer);
    expect((await asked.client.next(isEvent('online-users-list'))).data).toEqual([]);
    await silent.client.next(isEvent('online-users-count'));
    await asked.client.next(isEvent('online-users-count'));
    await sleep(200);
    expect(lists(silent.client.frames)).toEqual([]);
  });

  it('gets its list again after a clear, and after a change not said (everything may have changed)', async () => {
    await ping('ann', 'available');
    const { pump } = await start();
    const { client, peer } = await loopback.connect();
    pump.watch.set(peer, new Set(['ann']));
    pump.welcome(peer, true);
    expect(users(await client.next(isEvent('online-users-list')))).toEqual(['ann']);

    pump.changed(await changesOf(() => sql`select presently.clear_all()`.execute(database.db)));
    const cleared = await client.next(isEvent('online-users-list'), 5_000, client.frames.length);
    expect(cleared.data).toEqual([]);

    await ping('ann', 'busy');
    pump.changed();
    const again = await client.next(isEvent('online-users-list'), 5_000, client.frames.length);
    expect(again.data).toEqual([expect.objectContaining({ user: 'ann', status: 'busy' })]);
  });
});

describe('sockets following everyone', () => {
  it('get the current list at once on arrival, without another read', async () => {
    await ping('ann', 'available');
    const { pump, state } = await start({ intervalMs: 60_000 });
    const first = await loopback.connect();
    pump.welcome(first.peer);
    expect(users(await first.client.next(isEvent('online-users-list')))).toEqual(['ann']);
    await first.client.next(isEvent('online-users-count'));
    await sleep(50);

    const statements = state.statements;
    const second = await loopback.connect();
    pump.welcome(second.peer);
    expect(users(await second.client.next(isEvent('online-users-list')))).toEqual(['ann']);
    expect((await second.client.next(isEvent('online-users-count'))).data).toEqual({
      available: 1,
      busy: 0,
      away: 0,
    });
    await sleep(100);
    expect(state.statements).toBe(statements);
  });

  it('get the whole list again after a change, once the interval has passed', async () => {
    await ping('ann', 'available');
    const { pump } = await start({ intervalMs: 300 });
    const { client, peer } = await loopback.connect();
    pump.welcome(peer);
    await client.next(isEvent('online-users-list'));
    const startedAt = Date.now();
    pump.changed(await changesOf(() => ping('bob', 'busy')));
    const next = await client.next(isEvent('online-users-list'), 5_000, client.frames.length);
    expect(users(next)).toEqual(['ann', 'bob']);
    // Not before the interval since the last list (less the time the first one took to arrive).
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(200);
  });
});

describe('a failed read', () => {
  it('is tried again after retryMs, and what it was to send is sent then', async () => {
    await ping('ann', 'available');
    const { pump, state } = await start({ retryMs: 400 });
    const { client, peer } = await loopback.connect();
    pump.welcome(peer);
    await client.next(isEvent('online-users-list'));
    await client.next(isEvent('online-users-count'));

    state.failNext = true;
    const startedAt = Date.now();
    pump.changed(await changesOf(() => ping('bob', 'busy')));
    const next = await client.next(isEvent('online-users-list'), 5_000, client.frames.length);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(350);
    expect(users(next)).toEqual(['ann', 'bob']);
    const counts = await client.next(
      isEvent('online-users-count', (data) => data.busy === 1),
      5_000,
    );
    expect(counts.data).toEqual({ available: 1, busy: 1, away: 0 });
  });
});

describe('a stopped pump', () => {
  it('sends nothing more', async () => {
    const { pump } = await start();
    const { client, peer } = await loopback.connect();
    pump.welcome(peer);
    await client.next(isEvent('online-users-count'));
    const received = client.frames.length;
    pump.stop();
    pump.changed(await changesOf(() => ping('ann', 'busy')));
    pump.welcome(peer);
    await sleep(300);
    expect(client.frames.length).toBe(received);
  });
});
