import { sql } from 'kysely';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { isEvent, openSocket } from '../helpers/socket.js';

// Several real service processes on one database, and the database taking their listening
// connections away.

const realtime = useRealtime();
let first: RunningService;
let second: RunningService;

beforeAll(async () => {
  [first, second] = await Promise.all([realtime.start(), realtime.start()]);
});
beforeEach(async () => {
  expect((await call(first, 'GET', '/database/clear', KEYS.system)).status).toBe(200);
});

const change = (user: string, status: string | null) =>
  isEvent('presence-change', (data) => data.user === user && data.status === status);
const connected = async (service: RunningService) => {
  const socket = await openSocket(socketUrl(service));
  await socket.next(isEvent('online-users-count'));
  return socket;
};

describe('two instances on one database', () => {
  it('deliver a change made through either to the sockets of both', async () => {
    const [onFirst, onSecond] = await Promise.all([connected(first), connected(second)]);
    await call(first, 'POST', '/users/ping', KEYS.access, { id: 'via-rest', status: 'busy' });
    await Promise.all([
      onFirst.next(change('via-rest', 'busy')),
      onSecond.next(change('via-rest', 'busy')),
    ]);

    onSecond.send('user-ping', { id: 'via-socket', status: 'available' });
    for (const socket of [onFirst, onSecond]) {
      await socket.next(change('via-socket', 'available'));
      await socket.next(
        isEvent('online-users-count', (data) => data.busy === 1 && data.available === 1),
      );
    }
    await Promise.all([onFirst.close(), onSecond.close()]);
  });

  it('both show a clear made through one of them', async () => {
    await call(first, 'POST', '/users/ping', KEYS.access, { id: 'u', status: 'busy' });
    const [onFirst, onSecond] = await Promise.all([connected(first), connected(second)]);
    await call(second, 'GET', '/database/clear', KEYS.system);
    for (const socket of [onFirst, onSecond]) {
      await socket.next(isEvent('presence-cleared'));
      await socket.next(isEvent('online-users-list', (data) => data.length === 0));
    }
    await Promise.all([onFirst.close(), onSecond.close()]);
  });
});

describe('the change listener', () => {
  it('recovers after pg_terminate_backend and catches up on what it missed', async () => {
    const socket = await connected(first);
    const { rows } = await sql<{ pid: number }>`
      select pid from pg_stat_activity
      where application_name = 'presently-listener' and datname = current_database()`.execute(
      realtime.db,
    );
    expect(rows).toHaveLength(2);
    // Kill both instances' listeners and change things in the same round trip: the changes
    // commit before any listener can be back (its first retry waits at least 50 ms), and a
    // listener that is exiting forwards no notification, so only catching up can deliver them.
    await sql
      .raw(`
        select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'presently-listener' and datname = current_database();
        select * from presently.ping('missed-1', 'busy');
        select * from presently.ping('missed-2', 'busy');
        select * from presently.ping('missed-3', 'busy');`)
      .execute(realtime.db);
    const deltas = [];
    // Well within the listener's 5 s check: the catching up follows the reconnection itself.
    for (const id of ['missed-1', 'missed-2', 'missed-3']) {
      deltas.push(await socket.next(change(id, 'busy'), 3_000));
    }
    const positions = deltas.map((frame) => frame.data.position);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    await socket.next(isEvent('online-users-count', (data) => data.busy === 3));
    expect(first.stdout()).toContain('change listener lost its connection');
    expect(first.stdout()).toContain('listening again');

    // And it listens again: a new change arrives without delay.
    await call(second, 'POST', '/users/ping', KEYS.access, { id: 'after', status: 'available' });
    await socket.next(change('after', 'available'), 2_000);
    await socket.close();
  });
});

describe('stopping', () => {
  it('closes open sockets with 1001 and exits 0', async () => {
    const third = await realtime.start();
    const sockets = await Promise.all([connected(third), connected(third)]);
    expect(await third.stop('SIGTERM')).toBe(0);
    for (const socket of sockets) expect((await socket.closed).code).toBe(1001);
  });
});
