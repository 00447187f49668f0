import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { presenceRows } from '../helpers/database.js';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { isEvent, openSocket, type TestSocket } from '../helpers/socket.js';
import { waitFor } from '../helpers/wait.js';

// Acknowledged socket pings and back-pressure (CONTRACT "Acknowledged socket pings and
// back-pressure"), with the real service and real PostgreSQL.

// The flood limit well above these bursts: what is tested here is back-pressure, not the limit.
const realtime = useRealtime({ LIMIT_FRAMES_PER_SECOND: '100000' });
let service: RunningService;

beforeAll(async () => {
  service = await realtime.start();
});
beforeEach(async () => {
  expect((await call(service, 'GET', '/database/clear', KEYS.system)).status).toBe(200);
});

const sendRaw = (socket: TestSocket, frame: unknown) => socket.socket.send(JSON.stringify(frame));
const ackOf = (ack: unknown) => isEvent('ack', (data) => data.ack === ack);

describe('an acknowledged ping', () => {
  it.each([
    ['a string', 'ping-1'],
    ['an integer', 42],
    ['a 64-character string', 'x'.repeat(64)],
    ['a negative integer', -7],
  ])('with %s as ack is answered once stored, with the counts', async (_name, ack) => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    sendRaw(socket, { event: 'user-ping', data: { id: 'acked', status: 'busy' }, ack });
    const answer = await socket.next(ackOf(ack));
    expect(answer.data).toEqual({ ack, counts: { available: 0, busy: 1, away: 0 } });
    expect(await presenceRows(realtime.db)).toEqual([
      expect.objectContaining({ user_id: 'acked', status: 'busy' }),
    ]);
    await socket.close();
  });

  it('refused, gets an error frame carrying the same ack, and nothing is stored', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    sendRaw(socket, { event: 'user-ping', data: { id: 'a', status: 'away' }, ack: 'bad-status' });
    const error = await socket.next(isEvent('error'));
    expect(error.data).toEqual({
      code: 'invalid_status',
      message: expect.any(String),
      ack: 'bad-status',
    });
    expect(socket.all('ack')).toEqual([]);
    expect(await presenceRows(realtime.db)).toEqual([]);
    await socket.close();
  });

  it.each([
    ['an empty string', ''],
    ['a 65-character string', 'x'.repeat(65)],
    ['a fraction', 1.5],
    ['an unsafe integer', 2 ** 60],
    ['null', null],
    ['a boolean', true],
    ['an object', { id: 1 }],
    ['a list', [1]],
  ])('with %s as ack is refused (invalid_frame), and nothing is stored', async (_name, ack) => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    sendRaw(socket, { event: 'user-ping', data: { id: 'x', status: 'busy' }, ack });
    const error = await socket.next(isEvent('error'));
    expect(error.data).toEqual({ code: 'invalid_frame', message: expect.stringContaining('ack') });
    await sleep(200);
    expect(await presenceRows(realtime.db)).toEqual([]);
    await socket.close();
  });
});

describe('a burst of pings on one socket', () => {
  it('takes all 2,000, acknowledged in order, none refused, the last status of each user winning', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    const last = new Map<string, string>();
    for (let i = 0; i < 2_000; i++) {
      const id = `burst-${i % 50}`;
      const status = (Math.floor(i / 50) + (i % 3)) % 2 === 0 ? 'available' : 'busy';
      last.set(id, status);
      sendRaw(socket, { event: 'user-ping', data: { id, status }, ack: i });
    }
    await socket.next(ackOf(1_999), 60_000);
    expect(socket.all('error')).toEqual([]);
    expect(socket.all('ack').map((frame) => frame.data.ack)).toEqual(
      Array.from({ length: 2_000 }, (_, i) => i),
    );
    const stored = await presenceRows(realtime.db);
    expect(new Map(stored.map((row) => [row.user_id, row.status]))).toEqual(last);
    await socket.close();
  });

  it('is slowed down, not refused, while the database holds its pings: the socket is read no further', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    sendRaw(socket, {
      event: 'user-ping',
      data: { id: 'held', status: 'available' },
      ack: 'first',
    });
    await socket.next(ackOf('first'));
    // A transaction holds the row: every batch with 'held' in it waits.
    const blocker = new pg.Client({ connectionString: realtime.url });
    await blocker.connect();
    try {
      await blocker.query('begin');
      await blocker.query(`select * from presently.presence where user_id = 'held' for update`);
      const padding = 'p'.repeat(8_000);
      for (let i = 0; i < 3_000; i++) {
        socket.socket.send(
          JSON.stringify({
            event: 'user-ping',
            data: { id: 'held', status: 'busy', padding },
            ack: i,
          }),
        );
      }
      // The service stopped reading: what the client sent waits in its own buffers.
      await waitFor(
        'the client to be held back',
        () => socket.socket.bufferedAmount > 1_000_000,
        10_000,
      );
      await sleep(500);
      expect(socket.all('error')).toEqual([]);
    } finally {
      await blocker.query('rollback');
      await blocker.end();
    }
    await socket.next(ackOf(2_999), 60_000);
    expect(socket.all('error')).toEqual([]);
    expect(socket.all('ack')).toHaveLength(3_001);
    await socket.close();
  });
});

describe('a socket that never reads while sending', () => {
  it('stays bounded in the service: it is slowed down or closed as too slow, never buffered without end', async () => {
    // No flood limit, so that only the service's own bounds answer a client this fast.
    const unlimited = await realtime.start({ LIMIT_FRAMES_PER_SECOND: '0' });
    const socket = await openSocket(socketUrl(unlimited));
    await socket.next(isEvent('online-users-count'));
    const tcp = (socket.socket as unknown as { _socket: import('node:net').Socket })._socket;
    tcp.pause();
    // Every ping asks for an answer the client never reads: the answers pile up on the service's
    // side, up to what a socket may have unsent (1 MiB), then the socket is closed.
    const padding = 'p'.repeat(1_000);
    let sent = 0;
    let heldBack = false;
    const deadline = Date.now() + 30_000;
    while (socket.socket.readyState === socket.socket.OPEN && Date.now() < deadline) {
      if (socket.socket.bufferedAmount > 4_000_000) {
        // Several MB wait on the client's side: the service has stopped reading it.
        await sleep(500);
        heldBack = socket.socket.bufferedAmount > 4_000_000;
        if (heldBack) break;
        continue;
      }
      for (let i = 0; i < 200; i++, sent++) {
        sendRaw(socket, {
          event: 'user-ping',
          data: { id: `deaf-${sent % 100}`, status: sent % 2 ? 'busy' : 'available', padding },
          ack: sent,
        });
      }
      await sleep(1);
    }
    const closed = await Promise.race([
      socket.closed.then(({ code }) => code),
      sleep(heldBack ? 0 : 5_000).then(() => undefined),
    ]);
    // Slowed down (held back by TCP, the service taking no more than it can store) or closed
    // as too slow (1013): in either case what the service holds for it is bounded.
    expect(heldBack || closed === 1013).toBe(true);
    expect(sent).toBeGreaterThan(1_000);
    tcp.resume();
    const health = await fetch(`http://127.0.0.1:${unlimited.port}/healthz`);
    expect(health.status).toBe(200);
    if (socket.socket.readyState === socket.socket.OPEN) await socket.close();
    expect(await unlimited.stop()).toBe(0);
  }, 90_000);
});
