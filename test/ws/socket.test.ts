import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { type Frame, isEvent, openSocket, refusedUpgrade } from '../helpers/socket.js';

// The socket side as users meet it: a real service process, real sockets, real PostgreSQL.

const realtime = useRealtime();
let service: RunningService;

beforeAll(async () => {
  service = await realtime.start();
});
beforeEach(async () => {
  expect((await call(service, 'GET', '/database/clear', KEYS.system)).status).toBe(200);
});

const ping = (id: unknown, status: string) =>
  call(service, 'POST', '/users/ping', KEYS.access, { id, status });
const restList = async () => (await call(service, 'GET', '/users/list/all', KEYS.access)).body.data;
const restCount = async () => (await call(service, 'GET', '/users/count', KEYS.access)).body.data;
const logRows = async () => {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from presently.status_changes`.execute(realtime.db);
  return rows[0]?.n;
};
const change = (user: string, status: string | null) =>
  isEvent('presence-change', (data) => data.user === user && data.status === status);

describe('the upgrade', () => {
  it('is refused with 401 without a valid key, before anything else', async () => {
    expect(await refusedUpgrade(socketUrl(service, null))).toBe(401);
    expect(await refusedUpgrade(socketUrl(service, 'wrong'))).toBe(401);
    expect(await refusedUpgrade(`${socketUrl(service)}&key=wrong`)).toBe(401);
    const bearer = { Authorization: 'Bearer wrong' };
    expect(await refusedUpgrade(socketUrl(service, null), bearer)).toBe(401);
  });

  it('takes the user key, the system key, or a bearer token', async () => {
    for (const socket of [
      await openSocket(socketUrl(service)),
      await openSocket(socketUrl(service, KEYS.system)),
      await openSocket(socketUrl(service, null), {
        headers: { Authorization: `Bearer ${KEYS.access}` },
      }),
    ]) {
      await socket.next(isEvent('online-users-count'));
      await socket.close();
    }
  });

  it('is refused (400) on any other path, and the route is not run', async () => {
    await ping('kept', 'busy');
    const clear = socketUrl(service, KEYS.system).replace('/ws?', '/database/clear?');
    expect(await refusedUpgrade(clear)).toBe(400);
    expect(await restList()).toEqual([expect.objectContaining({ user: 'kept' })]);
  });

  it('is refused (403) to a page of another origin, and open to its own', async () => {
    const evil = { Origin: 'https://evil.example' };
    expect(await refusedUpgrade(socketUrl(service), evil)).toBe(403);
    const own = await openSocket(socketUrl(service), {
      origin: `http://127.0.0.1:${service.port}`,
    });
    await own.next(isEvent('online-users-count'));
    await own.close();
  });

  it('answers a plain request with 426 and other methods with 405', async () => {
    const plain = await call(service, 'GET', '/ws', KEYS.access);
    expect(plain).toMatchObject({ status: 426, body: { error: { code: 'upgrade_required' } } });
    expect((await call(service, 'POST', '/ws', KEYS.access)).status).toBe(405);
    expect((await call(service, 'GET', '/ws', 'wrong')).status).toBe(401);
  });
});

describe('snapshots and changes', () => {
  it('sends the list and the counts at once on connect', async () => {
    await ping(1, 'busy');
    await ping('two', 'available');
    // Users were pinged just before: settle, so that the instance has read their changes (a
    // socket connecting sooner may get a snapshot from just before them, then another).
    await sleep(500);
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    expect(socket.frames).toEqual([
      { event: 'online-users-list', data: await restList() },
      { event: 'online-users-count', data: { available: 1, busy: 1, away: 0 } },
    ]);
    await socket.close();
  });

  it('sends snapshots at once even to a socket connecting during changes, the last one right', async () => {
    const pings = Promise.all(Array.from({ length: 20 }, (_, i) => ping(`racing-${i}`, 'busy')));
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    // Deltas of the racing pings may come first; the snapshots come as a pair, list first.
    const snapshots = socket.frames.filter((frame) => frame.event !== 'presence-change');
    expect(snapshots.slice(0, 2).map((frame) => frame.event)).toEqual([
      'online-users-list',
      'online-users-count',
    ]);
    await pings;
    await socket.next(isEvent('online-users-count', (data) => data.busy === 20));
    const lists = socket.all('online-users-list');
    expect(lists.at(-1)?.data).toEqual(await restList());
    await socket.close();
  });

  it('gives a socket connecting later the current times, though heartbeats broadcast nothing', async () => {
    await ping('h', 'available');
    const early = await openSocket(socketUrl(service));
    const first = await early.next(isEvent('online-users-list'));
    await sleep(1_100);
    await ping('h', 'available');
    const late = await openSocket(socketUrl(service));
    const current = await late.next(isEvent('online-users-list'));
    expect(current.data).toEqual(await restList());
    expect(current.data[0].time).toBeGreaterThan(first.data[0].time);
    await Promise.all([early.close(), late.close()]);
  });

  it('delivers a ping sent on one socket to another, as a change and as snapshots', async () => {
    const sender = await openSocket(socketUrl(service));
    const watcher = await openSocket(socketUrl(service));
    await watcher.next(isEvent('online-users-count'));
    sender.send('user-ping', { id: 7, status: 'busy' });
    const delta = await watcher.next(change('7', 'busy'));
    expect(delta.data).toEqual({
      user: '7',
      status: 'busy',
      previous: null,
      time: expect.any(Number),
      position: expect.any(Number),
    });
    const list = await watcher.next(
      isEvent('online-users-list', (data) => data.some((u: Frame['data']) => u.user === '7')),
    );
    expect(list.data).toEqual(await restList());
    await watcher.next(isEvent('online-users-count', (data) => data.busy === 1));
    await Promise.all([sender.close(), watcher.close()]);
  });

  it('delivers a REST ping to sockets', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    await ping('r', 'available');
    await socket.next(change('r', 'available'));
    await ping('r', 'busy');
    const delta = await socket.next(change('r', 'busy'));
    expect(delta.data.previous).toBe('available');
    await socket.next(isEvent('online-users-count', (data) => data.busy === 1));
    await socket.close();
  });

  it('broadcasts nothing for heartbeats, which log nothing either', async () => {
    const socket = await openSocket(socketUrl(service));
    await ping('h', 'available');
    await socket.next(isEvent('online-users-count', (data) => data.available === 1));
    await sleep(400);
    const seen = socket.frames.length;
    const logged = await logRows();
    for (let i = 0; i < 3; i++) {
      expect((await ping('h', 'available')).status).toBe(200);
      socket.send('user-ping', { id: 'h', status: 'available' });
    }
    await sleep(1_000);
    expect(socket.frames.slice(seen)).toEqual([]);
    expect(await logRows()).toBe(logged);
    await socket.close();
  });

  it('coalesces a burst of 300 changes into a few snapshots, the last one right', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    const before = socket.frames.length;
    const started = Date.now();
    // 100 users, each new, then busy, then available again: 300 changes.
    await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        for (const status of ['available', 'busy', 'available']) {
          expect((await ping(`burst-${i}`, status)).status).toBe(200);
        }
      }),
    );
    const final = await restList();
    await socket.next(
      isEvent('online-users-count', (data) => data.available === 100 && data.busy === 0),
    );
    await sleep(600);
    const elapsed = (Date.now() - started) / 1000;
    const received = socket.frames.slice(before);
    const lists = received.filter((frame) => frame.event === 'online-users-list');
    const deltas = received.filter((frame) => frame.event === 'presence-change');
    expect(lists.at(-1)?.data).toEqual(final);
    expect(received.at(-1)).toEqual({
      event: 'online-users-count',
      data: { available: 100, busy: 0, away: 0 },
    });
    // At most four a second, and one more after the last change.
    expect(lists.length).toBeLessThanOrEqual(Math.ceil(elapsed * 4) + 2);
    expect(lists.length).toBeLessThan(30);
    expect(deltas).toHaveLength(300);
    const positions = deltas.map((frame) => frame.data.position);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(new Set(positions).size).toBe(300);
    await socket.close();
  });

  it('shows a clear to every socket', async () => {
    await ping('gone', 'busy');
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count', (data) => data.busy === 1));
    await call(service, 'GET', '/database/clear', KEYS.system);
    await socket.next(isEvent('presence-cleared'));
    await socket.next(isEvent('online-users-list', (data) => data.length === 0));
    await socket.next(
      isEvent('online-users-count', (data) => data.busy === 0 && data.available === 0),
    );
    await socket.close();
  });

  it('delivers a change whose transaction commits after a later one', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    const slow = new pg.Client({ connectionString: realtime.url });
    await slow.connect();
    try {
      await slow.query('begin');
      await slow.query(`select * from presently.ping('late', 'busy')`);
      await ping('early', 'available');
      const early = await socket.next(change('early', 'available'));
      await slow.query('commit');
      const late = await socket.next(change('late', 'busy'));
      expect(late.data.position).toBeGreaterThan(early.data.position);
      await socket.next(isEvent('online-users-count', (d) => d.busy === 1 && d.available === 1));
    } finally {
      await slow.end();
    }
    await socket.close();
  });
});

describe('frames', () => {
  it('answers what it cannot take with error frames, keeps the socket open, stores nothing', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    const bad: [string | Buffer, string][] = [
      ['not json', 'invalid_json'],
      [Buffer.from([1, 2, 3]), 'invalid_frame'],
      ['[1]', 'invalid_frame'],
      ['{"data": {"id": 1, "status": "busy"}}', 'invalid_frame'],
      [JSON.stringify({ event: 'user-pong', data: {} }), 'unknown_event'],
      [JSON.stringify({ event: 'user-ping' }), 'invalid_body'],
      [JSON.stringify({ event: 'user-ping', data: { id: '', status: 'busy' } }), 'invalid_id'],
      [JSON.stringify({ event: 'user-ping', data: { id: 1, status: 'away' } }), 'invalid_status'],
      [JSON.stringify({ event: 'user-ping', data: { id: 1.5, status: 'busy' } }), 'invalid_id'],
    ];
    for (const [frame, code] of bad) {
      const from = socket.frames.length;
      socket.socket.send(frame, { binary: Buffer.isBuffer(frame) });
      const answer = await socket.next(isEvent('error'), 5_000, from);
      expect(answer.data).toEqual({ code, message: expect.any(String) });
    }
    expect(await restList()).toEqual([]);
    // Refused frames never wait for the database, so they never crowd out pings.
    const from = socket.frames.length;
    for (let i = 0; i < 200; i++) socket.socket.send('nope');
    await socket.next(() => socket.frames.length - from >= 200);
    expect(new Set(socket.frames.slice(from).map((f) => f.data.code))).toEqual(
      new Set(['invalid_json']),
    );
    socket.send('user-ping', { id: 'after', status: 'busy' });
    await socket.next(change('after', 'busy'));
    await socket.close();
  });

  it('closes the socket (1009) on a frame over 1 MiB', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    socket.send('user-ping', { id: 'x'.repeat(1024 * 1024 + 1), status: 'busy' });
    expect((await socket.closed).code).toBe(1009);
    expect(await restCount()).toEqual({ available: 0, busy: 0, away: 0 });
  });
});
