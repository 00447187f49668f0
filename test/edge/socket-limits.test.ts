import { beforeAll, describe, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { isEvent, openSocket, refusedUpgrade } from '../helpers/socket.js';

// Flood limits on sockets, set low here: sockets per address and frames per second per socket.
// One client over them is refused; everyone else is served as before.

const realtime = useRealtime({ LIMIT_SOCKETS_PER_ADDRESS: '3', LIMIT_FRAMES_PER_SECOND: '20' });
let service: RunningService;

beforeAll(async () => {
  service = await realtime.start();
});

describe('sockets per address', () => {
  it('refuses an upgrade over the limit with 429, and takes one again after a close', async () => {
    const open = await Promise.all([1, 2, 3].map(() => openSocket(socketUrl(service))));
    expect(await refusedUpgrade(socketUrl(service))).toBe(429);
    await open[0]?.close();
    const again = await openSocket(socketUrl(service));
    await again.next(isEvent('online-users-count'));
    await Promise.all([again, ...open.slice(1)].map((socket) => socket?.close()));
  });
});

describe('frames per second', () => {
  it('refuses frames over the rate, closes a socket that keeps flooding, serves the others', async () => {
    const flooder = await openSocket(socketUrl(service));
    const neighbour = await openSocket(socketUrl(service));
    await neighbour.next(isEvent('online-users-count'));
    for (let i = 0; i < 200; i++) {
      if (flooder.socket.readyState !== flooder.socket.OPEN) break;
      flooder.send('user-ping', { id: 'flooder', status: i % 2 ? 'busy' : 'available' });
    }
    expect((await flooder.closed).code).toBe(1008);
    expect(flooder.all('error').map((frame) => frame.data.code)).toContain('too_many_frames');

    neighbour.send('user-ping', { id: 'neighbour', status: 'busy' });
    await neighbour.next(isEvent('presence-change', (data) => data.user === 'neighbour'));
    const list = await call(service, 'GET', '/users/list/all', KEYS.access);
    expect(list.body.data.map((user: { user: string }) => user.user)).toContain('neighbour');
    await neighbour.close();
  });
});
