import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addFillerUsers } from '../helpers/database.js';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import {
  type Frame,
  isEvent,
  openSocket,
  refusedUpgrade,
  type TestSocket,
} from '../helpers/socket.js';

// Watch lists (CONTRACT "Watch lists and bulk reads"): what a socket follows, with a real
// service, real sockets and real PostgreSQL.

const realtime = useRealtime({ LIMIT_WATCH_USERS: '5' });
let service: RunningService;

beforeAll(async () => {
  service = await realtime.start();
});
beforeEach(async () => {
  expect((await call(service, 'GET', '/database/clear', KEYS.system)).status).toBe(200);
});

const ping = (id: unknown, status: string) =>
  call(service, 'POST', '/users/ping', KEYS.access, { id, status });
const restCount = async () => (await call(service, 'GET', '/users/count', KEYS.access)).body.data;
const url = (query = '') => `${socketUrl(service)}${query}`;
const changesOf = (socket: TestSocket) =>
  socket.all('presence-change').map((frame) => `${frame.data.user}:${frame.data.status}`);
const change = (user: string, status: string) =>
  isEvent('presence-change', (data) => data.user === user && data.status === status);
const count = (busy: number) => isEvent('online-users-count', (data) => data.busy === busy);
/** Frames from `from` on, of one event. */
const since = (socket: TestSocket, from: number, event: string): Frame[] =>
  socket.frames.slice(from).filter((frame) => frame.event === event);

/** Subscribes and waits for the answer: the list, then the counts. */
async function subscribe(socket: TestSocket, users: unknown): Promise<Frame> {
  const from = socket.frames.length;
  socket.send('subscribe', { users });
  const list = await socket.next(isEvent('online-users-list'), 10_000, from);
  await socket.next(isEvent('online-users-count'), 10_000, socket.frames.indexOf(list) + 1);
  return list;
}

describe('subscribe', () => {
  it('replaces what a socket follows, answered by the list of those users it knows, by id, then the counts', async () => {
    await ping('b', 'busy');
    await ping('a', 'available');
    await ping('c', 'busy');
    const socket = await openSocket(url());
    await socket.next(isEvent('online-users-count'));
    const from = socket.frames.length;
    const list = await subscribe(socket, ['c', 'a', 'stranger']);
    expect(list.data).toEqual([
      { user: 'a', status: 'available', time: expect.any(Number) },
      { user: 'c', status: 'busy', time: expect.any(Number) },
    ]);
    const answer = socket.frames.slice(from).filter((f) => f.event !== 'presence-change');
    expect(answer.map((f) => f.event)).toEqual(['online-users-list', 'online-users-count']);
    expect(answer[1]?.data).toEqual({ available: 1, busy: 2, away: 0 });

    // Changes of followed users only; counts stay global and follow every change.
    const mark = socket.frames.length;
    await ping('b', 'available');
    await socket.next(
      isEvent('online-users-count', (d) => d.available === 2),
      10_000,
      mark,
    );
    await ping('a', 'busy');
    const changed = await socket.next(change('a', 'busy'), 10_000, mark);
    await socket.next(
      isEvent('online-users-count', (d) => d.available === 1 && d.busy === 2),
      10_000,
      socket.frames.indexOf(changed),
    );
    await sleep(300);
    expect(changesOf(socket).slice(-1)).toEqual(['a:busy']);
    expect(since(socket, mark, 'presence-change').map((f) => f.data.user)).toEqual(['a']);
    // Followed users' changes come as changes: no list is read again for a watch list.
    expect(since(socket, mark, 'online-users-list')).toEqual([]);
    await socket.close();
  });

  it('follows everyone again with "all", and nobody with an empty list', async () => {
    await ping('x', 'busy');
    await ping('y', 'busy');
    const socket = await openSocket(url());
    await socket.next(isEvent('online-users-count'));
    expect((await subscribe(socket, [])).data).toEqual([]);
    const mark = socket.frames.length;
    await ping('x', 'available');
    await socket.next(
      isEvent('online-users-count', (d) => d.available === 1),
      10_000,
      mark,
    );
    expect(since(socket, mark, 'presence-change')).toEqual([]);

    const all = await subscribe(socket, 'all');
    expect(all.data.map((item: { user: string }) => item.user)).toEqual(['x', 'y']);
    const after = socket.frames.length;
    await ping('y', 'available');
    await socket.next(change('y', 'available'), 10_000, after);
    await socket.next(
      isEvent('online-users-list', (d) => d[1]?.status === 'available'),
      10_000,
      after,
    );
    await socket.close();
  });

  it('hears a user it follows before the service knows them, from their first ping', async () => {
    const socket = await openSocket(url('&users=none'));
    expect((await subscribe(socket, ['newcomer', 7])).data).toEqual([]);
    const mark = socket.frames.length;
    await ping(7, 'busy');
    const first = await socket.next(change('7', 'busy'), 10_000, mark);
    expect(first.data.previous).toBeNull();
    // Subscribing again answers the list with them in it.
    const list = await subscribe(socket, ['newcomer', 7]);
    expect(list.data).toEqual([{ user: '7', status: 'busy', time: expect.any(Number) }]);
    await socket.close();
  });

  it.each([
    ['no data', undefined],
    ['no users', {}],
    ['users that is neither a list nor "all"', { users: 'everyone' }],
    ['users as an object', { users: { a: 1 } }],
    ['more users than LIMIT_WATCH_USERS', { users: ['1', '2', '3', '4', '5', '6'] }],
    ['an invalid id', { users: ['ok', ''] }],
    ['an id with a direction override', { users: ['ad\u202emin'] }],
    ['a fractional id', { users: [1.5] }],
  ])('refuses a subscription with %s, and keeps the previous one', async (_name, data) => {
    const socket = await openSocket(url());
    await socket.next(isEvent('online-users-count'));
    await subscribe(socket, ['kept']);
    const mark = socket.frames.length;
    socket.socket.send(
      JSON.stringify(data === undefined ? { event: 'subscribe' } : { event: 'subscribe', data }),
    );
    const error = await socket.next(isEvent('error'), 10_000, mark);
    expect(error.data).toMatchObject({ code: 'invalid_subscription', message: expect.any(String) });
    await ping('other', 'busy');
    await ping('kept', 'busy');
    await socket.next(change('kept', 'busy'), 10_000, mark);
    expect(since(socket, mark, 'presence-change').map((f) => f.data.user)).toEqual(['kept']);
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
    await socket.close();
  });
});

describe('users in the connect query', () => {
  it('none: counts at once and after every change, no list, no change', async () => {
    await ping('p', 'busy');
    await sleep(300);
    const socket = await openSocket(url('&users=none'));
    const counts = await socket.next(isEvent('online-users-count'));
    expect(counts.data).toEqual(await restCount());
    await ping('q', 'busy');
    await socket.next(count(2));
    await ping('p', 'available');
    await socket.next(isEvent('online-users-count', (d) => d.available === 1));
    expect(socket.all('online-users-list')).toEqual([]);
    expect(socket.all('presence-change')).toEqual([]);
    await socket.close();
  });

  it('ids: the list of those users at once, then their changes only', async () => {
    await ping('m', 'busy');
    await ping('n', 'busy');
    await sleep(300);
    const socket = await openSocket(url('&users=n&users=zed'));
    const list = await socket.next(isEvent('online-users-list'));
    expect(list.data).toEqual([{ user: 'n', status: 'busy', time: expect.any(Number) }]);
    await ping('m', 'available');
    await ping('zed', 'available');
    await socket.next(change('zed', 'available'));
    await sleep(300);
    expect(changesOf(socket)).toEqual(['zed:available']);
    await socket.close();
  });

  it.each([
    ['an empty id', '&users='],
    [
      'more ids than LIMIT_WATCH_USERS',
      `&${['1', '2', '3', '4', '5', '6'].map((id) => `users=${id}`).join('&')}`,
    ],
    ['an id with a zero-width space', '&users=a%E2%80%8Bb'],
  ])('refuses %s before the upgrade (400)', async (_name, query) => {
    expect(await refusedUpgrade(url(query))).toBe(400);
  });
});

describe('resuming with a watch list', () => {
  it('replays the missed changes of followed users only, then live ones', async () => {
    const first = await openSocket(url('&users=r1&users=r2'));
    await first.next(isEvent('online-users-count'));
    await ping('r1', 'busy');
    const seen = await first.next(change('r1', 'busy'));
    await first.close();

    await ping('unfollowed', 'busy');
    await ping('r2', 'available');
    await ping('r1', 'available');
    await ping('unfollowed', 'available');
    const resumed = await openSocket(url(`&users=r1&users=r2&since=${seen.data.position}`));
    await resumed.next(isEvent('online-users-count'));
    expect(changesOf(resumed)).toEqual(['r2:available', 'r1:available']);
    await ping('unfollowed', 'busy');
    await ping('r2', 'busy');
    await resumed.next(change('r2', 'busy'));
    expect(changesOf(resumed)).toEqual(['r2:available', 'r1:available', 'r2:busy']);
    await resumed.close();
  });
});

describe('two instances', () => {
  it('each delivers a change to its own sockets that follow the user, and to no other', async () => {
    const other = await realtime.start();
    const follower = await openSocket(`${socketUrl(other)}&users=t1`);
    const bystander = await openSocket(`${socketUrl(other)}&users=t2`);
    await Promise.all([
      follower.next(isEvent('online-users-count')),
      bystander.next(isEvent('online-users-count')),
    ]);
    await ping('t1', 'busy');
    await follower.next(change('t1', 'busy'));
    await bystander.next(count(1));
    expect(bystander.all('presence-change')).toEqual([]);
    await Promise.all([follower.close(), bystander.close()]);
    expect(await other.stop()).toBe(0);
  });
});

describe('a socket following everyone that reads slowly', () => {
  it('is not closed however large the list, and ends with the final state', {
    timeout: 120_000,
  }, async () => {
    // About 2 MB a list: over the 1 MiB every socket may have unsent.
    await addFillerUsers(realtime.db, 15_000);
    await ping('mover', 'available');
    const socket = await openSocket(url());
    await socket.next(
      isEvent('online-users-list', (d) => d.length === 15_001),
      30_000,
    );
    const tcp = (socket.socket as unknown as { _socket: import('node:net').Socket })._socket;
    tcp.pause();
    // A status change every 100 ms for 3 s, the socket reading nothing meanwhile.
    let last = 'available';
    for (let i = 0; i < 30; i++) {
      last = last === 'available' ? 'busy' : 'available';
      await ping('mover', last);
      await sleep(100);
    }
    await sleep(500);
    tcp.resume();
    const final = await socket.next(
      isEvent('online-users-list', (d) =>
        d.some((u: { user: string; status: string }) => u.user === 'mover' && u.status === last),
      ),
      60_000,
      socket.frames.findLastIndex((f) => f.event === 'online-users-list') + 1,
    );
    expect(final.data).toHaveLength(15_001);
    await sleep(1_000);
    const lists = socket.all('online-users-list');
    expect(lists.at(-1)?.data.find((u: { user: string }) => u.user === 'mover')?.status).toBe(last);
    // Latest wins: a few lists, never one per change.
    expect(lists.length).toBeLessThan(15);
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
    await socket.close();
  });
});
