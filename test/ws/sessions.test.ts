import { beforeAll, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { isEvent, openSocket } from '../helpers/socket.js';

// Sessions, overrides and messages reach sockets as presence-change frames, from the log.

const realtime = useRealtime();
let service: RunningService;

beforeAll(async () => {
  service = await realtime.start();
});

it('announces a message set, and its expiry within about a second, dated at its end', async () => {
  const socket = await openSocket(socketUrl(service));
  await socket.next(isEvent('online-users-count'));
  await call(service, 'POST', '/users/ping', KEYS.access, { id: 'ann', status: 'busy' });
  const expires = new Date(Date.now() + 2_000);
  const set = await call(service, 'PUT', '/users/ann/message', KEYS.access, {
    text: 'lunch',
    expires: expires.toISOString(),
  });
  expect(set.status).toBe(200);
  const shown = await socket.next(isEvent('presence-change', (d) => d.message === 'lunch'));
  expect(shown.data).toMatchObject({ user: 'ann', status: 'busy', previous: 'busy' });
  const from = socket.frames.indexOf(shown) + 1;
  const ended = await socket.next(
    isEvent('presence-change', (d) => d.user === 'ann' && d.message === undefined),
    5_000,
    from,
  );
  expect(ended.data).toMatchObject({ status: 'busy', previous: 'busy' });
  expect(Math.abs(ended.data.time - Math.floor(expires.getTime() / 1000))).toBeLessThanOrEqual(1);
  await socket.close();
});

it('ends a session on user-leave, the user away at once with no other session', async () => {
  const socket = await openSocket(socketUrl(service));
  await socket.next(isEvent('online-users-count'));
  socket.send('user-ping', { id: 'bob', status: 'available', session: 'tab-1' });
  await socket.next(
    isEvent('presence-change', (d) => d.user === 'bob' && d.status === 'available'),
  );
  socket.send('user-leave', { id: 'bob', session: 'tab-1' });
  await socket.next(isEvent('presence-change', (d) => d.user === 'bob' && d.status === 'away'));
  socket.send('user-leave', { id: 'bob', session: 'tab-1' });
  const refused = await socket.next(isEvent('error'));
  expect(refused.data.code).toBe('session_not_found');
  socket.send('user-leave', { id: 'bob', session: '' });
  expect(
    (await socket.next(isEvent('error', (d) => d.code !== 'session_not_found'))).data.code,
  ).toBe('invalid_session');
  await socket.close();
});
