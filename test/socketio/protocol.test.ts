import { setTimeout as sleep } from 'node:timers/promises';
import { io, type Socket } from 'socket.io-client';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addFillerUsers, presenceRows } from '../helpers/database.js';
import { KEYS } from '../helpers/http.js';
import { useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { type Recorded, recorder } from './helpers.js';

// Socket.IO (CONTRACT "Socket.IO"): the same service as /ws behind the seed's transport — keys,
// origins, acknowledgements, watch lists, resuming — with the real socket.io-client.

const APP_ORIGIN = 'https://app.example.com';
const realtime = useRealtime({ LIMIT_WATCH_USERS: '5', CORS_ORIGINS: APP_ORIGIN });
let service: RunningService;
const clients: Socket[] = [];

beforeAll(async () => {
  service = await realtime.start();
});
beforeEach(async () => {
  expect((await call(service, 'GET', '/database/clear', KEYS.system)).status).toBe(200);
});
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

const base = (of: RunningService = service) => `http://127.0.0.1:${of.port}`;
const ping = (id: unknown, status: string) =>
  call(service, 'POST', '/users/ping', KEYS.access, { id, status });

function connect(options: Parameters<typeof io>[1] = {}, of?: RunningService): Recorded {
  const client = io(base(of), { reconnection: false, forceNew: true, ...options });
  clients.push(client);
  return recorder(client);
}
const withKey = (options: Parameters<typeof io>[1] = {}) =>
  connect({ auth: { key: KEYS.access }, ...options });

describe('keys and origins', () => {
  it.each([
    ['no key', {}],
    ['a wrong key in auth', { auth: { key: 'wrong' } }],
    ['a wrong key in the query', { query: { key: 'wrong' } }],
    ['a right key beside a wrong one', { auth: { key: KEYS.access }, query: { key: 'wrong' } }],
    ['a key that is not a string', { auth: { key: 42 } }],
  ])('refuses %s with connect_error unauthorized', async (_name, options) => {
    const client = connect(options);
    const error = await client.refused();
    expect(error.message).toBe('unauthorized');
    expect(error.data).toMatchObject({ code: 'unauthorized' });
  });

  it.each([
    ['auth', { auth: { key: KEYS.access } }],
    ['the query', { query: { key: KEYS.system } }],
    [
      'a bearer header (websocket only, as browsers cannot set it)',
      { transports: ['websocket'], extraHeaders: { Authorization: `Bearer ${KEYS.access}` } },
    ],
  ])('takes the key from %s', async (_name, options) => {
    const client = connect(options as Parameters<typeof io>[1]);
    await client.next('online-users-count');
  });

  it('refuses a page of a foreign origin, polling and websocket alike, and takes an allowed one', async () => {
    for (const transports of [['polling'], ['websocket']]) {
      const foreign = withKey({ transports, extraHeaders: { Origin: 'https://evil.example' } });
      expect((await foreign.refused()).message).toBe('origin_not_allowed');
      const allowed = withKey({ transports, extraHeaders: { Origin: APP_ORIGIN } });
      await allowed.next('online-users-count');
    }
  });

  it('refuses an invalid since or users with their codes', async () => {
    expect((await withKey({ auth: { key: KEYS.access, since: 'x' } }).refused()).message).toBe(
      'invalid_since',
    );
    const tooMany = withKey({ auth: { key: KEYS.access, users: ['1', '2', '3', '4', '5', '6'] } });
    expect((await tooMany.refused()).message).toBe('invalid_subscription');
  });
});

describe('acknowledgements', () => {
  it('answers a ping with the counts once stored, as POST /users/ping does', async () => {
    const client = withKey();
    await client.next('online-users-count');
    const answer = await client.socket.emitWithAck('user-ping', { id: 'acked', status: 'busy' });
    expect(answer).toEqual({ data: { available: 0, busy: 1, away: 0 } });
    expect(await presenceRows(realtime.db)).toEqual([
      expect.objectContaining({ user_id: 'acked', status: 'busy' }),
    ]);
  });

  it.each([
    ['an invalid id', 'user-ping', { id: '', status: 'busy' }, 'invalid_id'],
    ['an invalid status', 'user-ping', { id: 'a', status: 'away' }, 'invalid_status'],
    ['a body that is not an object', 'user-ping', 'hello', 'invalid_body'],
    ['an unknown event', 'dance', { id: 'a' }, 'unknown_event'],
    ['an invalid subscription', 'subscribe', { users: 'everyone' }, 'invalid_subscription'],
  ])('answers %s with the error, and stores nothing', async (_name, event, data, code) => {
    const client = withKey();
    await client.next('online-users-count');
    const answer = await client.socket.emitWithAck(event, data);
    expect(answer).toEqual({ error: { code, message: expect.any(String) } });
    expect(client.all('error')).toEqual([]);
    expect(await presenceRows(realtime.db)).toEqual([]);
  });

  it('sends an error event, its payload under data, for a refused ping without an acknowledgement', async () => {
    const client = withKey();
    await client.next('online-users-count');
    client.socket.emit('user-ping', { id: 1, status: 'sleeping' });
    const error = await client.next('error');
    expect(error).toEqual({ data: { code: 'invalid_status', message: expect.any(String) } });
    expect(client.socket.connected).toBe(true);
  });
});

describe('transports', () => {
  it('works over long-polling only', async () => {
    const client = withKey({ transports: ['polling'] });
    await client.next('online-users-count');
    expect(client.socket.io.engine.transport.name).toBe('polling');
    const answer = await client.socket.emitWithAck('user-ping', {
      id: 'poller',
      status: 'available',
    });
    expect(answer.data.available).toBe(1);
    await client.next('presence-change', (p) => p.data.user === 'poller');
  });

  it('works websocket-only across two instances: a ping on one reaches a client of the other', async () => {
    const other = await realtime.start({ CORS_ORIGINS: APP_ORIGIN });
    const here = withKey({ transports: ['websocket'] });
    const there = connect({ transports: ['websocket'], auth: { key: KEYS.access } }, other);
    await Promise.all([here.next('online-users-count'), there.next('online-users-count')]);
    await here.socket.emitWithAck('user-ping', { id: 'crossing', status: 'busy' });
    await there.next(
      'presence-change',
      (p) => p.data.user === 'crossing' && p.data.status === 'busy',
    );
    await there.next('online-users-list', (p) =>
      p.data.some((u: { user: string }) => u.user === 'crossing'),
    );
    there.socket.disconnect();
    expect(await other.stop()).toBe(0);
  });
});

describe('watch lists and resuming', () => {
  it('subscribes with users in auth, and with the subscribe event', async () => {
    await ping('w1', 'busy');
    await ping('w2', 'busy');
    const client = withKey({ auth: { key: KEYS.access, users: ['w1'] } });
    expect(
      (await client.next('online-users-list')).data.map((u: { user: string }) => u.user),
    ).toEqual(['w1']);
    await ping('w2', 'available');
    await ping('w1', 'available');
    await client.next('presence-change', (p) => p.data.user === 'w1');
    expect(client.all('presence-change').map((p) => p.data.user)).toEqual(['w1']);

    const from = client.events.length;
    const answer = await client.socket.emitWithAck('subscribe', { users: ['w2'] });
    expect(answer).toEqual({ data: { following: 1 } });
    const list = await client.next('online-users-list', () => true, 10_000, from);
    expect(list.data.map((u: { user: string }) => u.user)).toEqual(['w2']);
  });

  it('resumes after a position from auth, and resyncs when it cannot', async () => {
    const first = withKey();
    await first.next('online-users-count');
    await ping('r', 'busy');
    const seen = await first.next('presence-change', (p) => p.data.user === 'r');
    first.socket.disconnect();
    await ping('r', 'available');
    await ping('s', 'busy');
    const resumed = withKey({ auth: { key: KEYS.access, since: seen.data.position } });
    await resumed.next('online-users-count');
    expect(resumed.all('presence-change').map((p) => `${p.data.user}:${p.data.status}`)).toEqual([
      'r:available',
      's:busy',
    ]);
    const lost = withKey({ auth: { key: KEYS.access, since: 999_999_999 } });
    expect(await lost.next('resync')).toEqual({
      data: { position: expect.any(Number), reason: 'unknown_position' },
    });
    await lost.next('online-users-list');
  });
});

describe('a slow client', () => {
  it('that stops reading is not closed for a large list, and ends with the final state', {
    timeout: 120_000,
  }, async () => {
    // About 2 MB a list: over the 1 MiB every socket may have unsent.
    await addFillerUsers(realtime.db, 15_000);
    await ping('mover', 'available');
    const client = withKey({ transports: ['websocket'] });
    await client.next('online-users-list', (p) => p.data.length === 15_001, 30_000);
    // biome-ignore lint/suspicious/noExplicitAny: reaching the client's TCP socket to stop reading
    const tcp = (client.socket.io.engine.transport as any).ws._socket;
    tcp.pause();
    let last = 'available';
    for (let i = 0; i < 30; i++) {
      last = last === 'available' ? 'busy' : 'available';
      await ping('mover', last);
      await sleep(100);
    }
    tcp.resume();
    const final = await client.next(
      'online-users-list',
      (p) =>
        p.data.some(
          (u: { user: string; status: string }) => u.user === 'mover' && u.status === last,
        ),
      60_000,
    );
    expect(final.data).toHaveLength(15_001);
    expect(client.all('online-users-list').length).toBeLessThan(15);
    expect(client.socket.connected).toBe(true);
  });
});

describe('shutdown', () => {
  it('disconnects Socket.IO clients, polling ones included, and exits 0', async () => {
    const other = await realtime.start({ CORS_ORIGINS: APP_ORIGIN });
    const polling = connect({ transports: ['polling'], auth: { key: KEYS.access } }, other);
    const socket = connect({ transports: ['websocket'], auth: { key: KEYS.access } }, other);
    await Promise.all([polling.next('online-users-count'), socket.next('online-users-count')]);
    const gone = (client: Recorded) =>
      new Promise<string>((resolve) =>
        client.socket.once('disconnect', (reason) => resolve(reason)),
      );
    const disconnected = Promise.all([gone(polling), gone(socket)]);
    const started = Date.now();
    expect(await other.stop('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await disconnected).length).toBe(2);
  });
});
