import { io, type Socket } from 'socket.io-client';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { presenceRows } from '../helpers/database.js';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { isEvent, openSocket } from '../helpers/socket.js';
import { recorder } from '../socketio/helpers.js';

// `user-pings` (CONTRACT "Bulk pings and cores") on both socket transports: the REST bulk ping,
// the same validation and group commit, in a socket's order.

const realtime = useRealtime();
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

const stored = async () =>
  (await presenceRows(realtime.db)).map((row) => [row.user_id, row.status]);
const bigPings = () =>
  Array.from({ length: 1_000 }, (_, i) => ({
    id: `${'😀'.repeat(128 - String(i).length)}${i}`,
    status: i % 2 ? 'busy' : 'available',
  }));

function socketIo() {
  const client = io(`http://127.0.0.1:${service.port}`, {
    reconnection: false,
    forceNew: true,
    auth: { key: KEYS.access },
  });
  clients.push(client);
  return recorder(client);
}

describe('user-pings on /ws', () => {
  it('stores a group in order, the last ping of a user winning, and announces the changes', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    socket.send('user-pings', {
      pings: [
        { id: 'a', status: 'busy' },
        { id: 1, status: 'busy' },
        { id: 'a', status: 'available' },
      ],
    });
    // A later single ping from the same socket is stored after the group.
    socket.send('user-ping', { id: '1', status: 'available' });
    await socket.next(
      isEvent('presence-change', (d) => d.user === '1' && d.status === 'available'),
    );
    expect(await stored()).toEqual([
      ['1', 'available'],
      ['a', 'available'],
    ]);
    await socket.close();
  });

  it('refuses a group with one bad ping whole, naming its index, and stays open', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    socket.send('user-pings', {
      pings: [
        { id: 'a', status: 'busy' },
        { id: 'b', status: 'away' },
      ],
    });
    const error = await socket.next(isEvent('error'));
    expect(error.data).toMatchObject({ code: 'invalid_status' });
    expect(error.data.message).toMatch(/^pings\[1\]: /);
    socket.send('user-pings', { pings: [] });
    expect((await socket.next(isEvent('error', (d) => d.code === 'invalid_body'))).data.code).toBe(
      'invalid_body',
    );
    socket.send('user-ping', { id: 'after', status: 'busy' });
    await socket.next(isEvent('presence-change', (d) => d.user === 'after'));
    expect(await stored()).toEqual([['after', 'busy']]);
    await socket.close();
  });

  it('takes 1,000 pings of 128-character ids in one frame', async () => {
    const socket = await openSocket(socketUrl(service));
    await socket.next(isEvent('online-users-count'));
    socket.send('user-pings', { pings: bigPings() });
    await socket.next(isEvent('online-users-count', (d) => d.available === 500 && d.busy === 500));
    expect((await stored()).length).toBe(1_000);
    await socket.close();
  });
});

describe('user-pings on Socket.IO', () => {
  it('answers the acknowledgement with the REST body once all are stored', async () => {
    const client = socketIo();
    await client.next('online-users-count');
    const answer = await client.socket.emitWithAck('user-pings', {
      pings: [
        { id: 'x', status: 'busy' },
        { id: 'y', status: 'busy' },
        { id: 'x', status: 'available' },
      ],
    });
    expect(answer).toEqual({ data: { available: 1, busy: 1, away: 0 } });
    expect(await stored()).toEqual([
      ['x', 'available'],
      ['y', 'busy'],
    ]);
  });

  it('refuses a bad group whole in the acknowledgement', async () => {
    const client = socketIo();
    await client.next('online-users-count');
    const answer = await client.socket.emitWithAck('user-pings', {
      pings: [{ id: 'x', status: 'busy' }, { status: 'busy' }],
    });
    expect(answer.error.code).toBe('invalid_id');
    expect(answer.error.message).toMatch(/^pings\[1\]: /);
    expect(await stored()).toEqual([]);
  });

  it('takes 1,000 pings of 128-character ids in one event', async () => {
    const client = socketIo();
    await client.next('online-users-count');
    const answer = await client.socket.emitWithAck('user-pings', { pings: bigPings() });
    expect(answer).toEqual({ data: { available: 500, busy: 500, away: 0 } });
  });
});
