import { sql } from 'kysely';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { logPositionsAfter } from '../helpers/database.js';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { type Frame, isEvent, openSocket, refusedUpgrade } from '../helpers/socket.js';

// Sockets that reconnect with `?since=<position>`: every change after it, in order, none twice,
// then live ones; a `resync` when the position cannot be served.

const realtime = useRealtime();
const MISSED = 20_000;
let service: RunningService;

beforeAll(async () => {
  service = await realtime.start();
});
beforeEach(async () => {
  expect((await call(service, 'GET', '/database/clear', KEYS.system)).status).toBe(200);
});

const ping = (id: string, status: string) =>
  call(service, 'POST', '/users/ping', KEYS.access, { id, status });
const since = (position: number) => `${socketUrl(service)}&since=${position}`;
const positions = (frames: Frame[]) =>
  frames
    .filter((f) => f.event === 'presence-change' || f.event === 'presence-cleared')
    .map((f) => f.data.position as number);

/** `count` new users in one transaction: as many changes, appended at once. */
async function addUsers(prefix: string, count: number): Promise<void> {
  await sql`
    insert into presently.presence (user_id, status, last_ping)
    select ${prefix} || g, 'available', now() from generate_series(1, ${count}) g
  `.execute(realtime.db);
}

describe('a socket resuming from a position', () => {
  it('gets every change after it in order, then live ones, none twice', async () => {
    const live = await openSocket(socketUrl(service));
    await ping('a', 'busy');
    const first = await live.next(isEvent('presence-change', (d) => d.user === 'a'));
    await live.close();

    // Missed while away: many read batches, more than the socket's buffers hold.
    await addUsers('missed-', MISSED);
    await ping('a', 'available');
    const resumed = await openSocket(since(first.data.position));
    // The client reads nothing for a while, so the catch-up waits for it, and changes made
    // meanwhile must wait for the catch-up.
    resumed.socket.pause();
    for (let i = 0; i < 20; i++) await ping(`during-${i}`, i % 2 ? 'busy' : 'available');
    await ping('last', 'busy');
    resumed.socket.resume();
    await resumed.next(
      isEvent('presence-change', (d) => d.user === 'last'),
      15_000,
    );

    const expected = await logPositionsAfter(realtime.db, first.data.position);
    expect(expected.length).toBe(MISSED + 1 + 20 + 1);
    expect(positions(resumed.frames)).toEqual(expected);
    // The seed's snapshots follow the catch-up, never before the changes they include. The
    // first may come after live changes: the pump sends at most one per interval.
    await resumed.next(isEvent('online-users-list'));
    const firstSnapshot = resumed.frames.findIndex((f) => f.event === 'online-users-list');
    const replayed = resumed.frames.findIndex(
      (f) => f.event === 'presence-change' && f.data.position === expected[MISSED],
    );
    expect(firstSnapshot).toBeGreaterThan(replayed);
    await resumed.close();
  });

  it('gets nothing replayed when it missed nothing, and live changes after', async () => {
    const live = await openSocket(socketUrl(service));
    await ping('b', 'busy');
    const seen = await live.next(isEvent('presence-change', (d) => d.user === 'b'));
    await live.close();
    const resumed = await openSocket(since(seen.data.position));
    await resumed.next(isEvent('online-users-count'));
    await ping('b', 'available');
    await resumed.next(isEvent('presence-change', (d) => d.user === 'b'));
    expect(positions(resumed.frames)).toEqual(
      await logPositionsAfter(realtime.db, seen.data.position),
    );
    await resumed.close();
  });

  it('sees a clear made while it was away', async () => {
    const live = await openSocket(socketUrl(service));
    await ping('c', 'busy');
    const seen = await live.next(isEvent('presence-change', (d) => d.user === 'c'));
    await live.close();
    await call(service, 'GET', '/database/clear', KEYS.system);
    await ping('d', 'busy');
    const resumed = await openSocket(since(seen.data.position));
    await resumed.next(isEvent('presence-change', (d) => d.user === 'd'));
    expect(resumed.frames.map((f) => f.event).slice(0, 2)).toEqual([
      'presence-cleared',
      'presence-change',
    ]);
    await resumed.close();
  });
});

describe('a position that cannot be served', () => {
  it('gets a resync, then fresh snapshots, when history it needs was pruned', async () => {
    // An interval that ended nine days ago: past a one-day retention.
    await sql`
      select presently.append_change('old', 'busy', null, now() - interval '10 days'),
             presently.append_change('old', 'away', 'busy', now() - interval '9 days')
    `.execute(realtime.db);
    const [old] = await logPositionsAfter(realtime.db, 0);
    await ping('old', 'available');
    const { rows } = await sql<{ pruned: number }>`
      select presently.prune_history(interval '1 day', 100) as pruned`.execute(realtime.db);
    expect(rows[0]?.pruned).toBe(1);

    const resumed = await openSocket(since(Number(old) - 1));
    const resync = await resumed.next(isEvent('resync'));
    expect(resync.data).toMatchObject({ reason: 'pruned' });
    expect(resync.data.position).toBeGreaterThan(Number(old));
    await resumed.next(isEvent('online-users-count'));
    expect(resumed.frames[0]?.event).toBe('resync');
    expect(positions(resumed.frames)).toEqual([]);
    const list = resumed.all('online-users-list')[0]?.data;
    expect(list).toEqual([expect.objectContaining({ user: 'old', status: 'available' })]);

    await ping('new', 'busy');
    await resumed.next(isEvent('presence-change', (d) => d.user === 'new'));
    await resumed.close();
  });

  it('gets a resync for a position the log never reached', async () => {
    await ping('e', 'busy');
    const resumed = await openSocket(since(1e12));
    expect((await resumed.next(isEvent('resync'))).data).toMatchObject({
      reason: 'unknown_position',
    });
    await resumed.next(isEvent('online-users-list'));
    await resumed.close();
  });

  it('is refused (400) when it is not a position', async () => {
    for (const bad of ['-1', 'abc', '1.5', '', '1e3', '9999999999999999']) {
      expect(await refusedUpgrade(`${socketUrl(service)}&since=${bad}`)).toBe(400);
    }
  });
});
