import { setTimeout as sleep } from 'node:timers/promises';
import { io, type Socket } from 'socket.io-client';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { openSocket } from '../helpers/socket.js';
import { type Recorded, recorder } from './helpers.js';

// The seed's own clients, written as the seed's document describes them, with the real
// socket.io-client against the real service on real PostgreSQL.

const realtime = useRealtime({ AWAY_TIMEOUT_SECONDS: '2' });
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

const base = () => `http://127.0.0.1:${service.port}`;
const ping = (id: unknown, status: string) =>
  call(service, 'POST', '/users/ping', KEYS.access, { id, status });
const restList = async () => (await call(service, 'GET', '/users/list/all', KEYS.access)).body.data;

function connect(url: string, options: Parameters<typeof io>[1] = {}): Recorded {
  const client = io(url, { reconnection: false, forceNew: true, ...options });
  clients.push(client);
  return recorder(client);
}

describe('a client written exactly as the seed describes', () => {
  it('connects with ?key= and default transports, pings, and hears both events with their data', async () => {
    await ping(1, 'busy');
    await sleep(300);
    // The seed's client: io(url with ?key=), emit('user-ping', ...), on('online-users-list'), on('online-users-count').
    const client = connect(`${base()}?key=${KEYS.access}`);
    const first = await client.next('online-users-list');
    expect(first).toEqual({ data: await restList() });
    expect(await client.next('online-users-count')).toEqual({
      data: { available: 0, busy: 1, away: 0 },
    });
    client.socket.emit('user-ping', { id: 2, status: 'available' });
    await client.next('online-users-count', (payload) => payload.data.available === 1);
    const list = await client.next('online-users-list', (payload) => payload.data.length === 2);
    expect(list.data).toEqual(await restList());
    const change = await client.next('presence-change', (payload) => payload.data.user === '2');
    expect(change.data).toMatchObject({ user: '2', status: 'available', previous: null });
  });

  it('works beside /ws: a ping on one reaches the other', async () => {
    const sio = connect(`${base()}?key=${KEYS.access}`);
    await sio.next('online-users-count');
    const ws = await openSocket(socketUrl(service));
    await ws.next((frame) => frame.event === 'online-users-count');
    sio.socket.emit('user-ping', { id: 'from-sio', status: 'busy' });
    await ws.next((frame) => frame.event === 'presence-change' && frame.data.user === 'from-sio');
    ws.send('user-ping', { id: 'from-ws', status: 'busy' });
    await sio.next('presence-change', (payload) => payload.data.user === 'from-ws');
    await ws.close();
  });

  it('hears a timeout pushed without any request', async () => {
    const client = connect(`${base()}?key=${KEYS.access}`);
    await client.next('online-users-count');
    client.socket.emit('user-ping', { id: 'sleepy', status: 'available' });
    const away = await client.next(
      'presence-change',
      (payload) => payload.data.user === 'sleepy' && payload.data.status === 'away',
      10_000,
    );
    expect(away.data.previous).toBe('available');
  });
});
