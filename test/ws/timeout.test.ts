import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import { call, type RunningService } from '../helpers/service.js';
import { isEvent, openSocket } from '../helpers/socket.js';

// Going away by time: nothing writes, yet every socket learns of it, once, within about a second.

const realtime = useRealtime({ AWAY_TIMEOUT_SECONDS: '1' });
let first: RunningService;
let second: RunningService;

beforeAll(async () => {
  [first, second] = await Promise.all([realtime.start(), realtime.start()]);
});

it('pushes a timeout to sockets with no request at all, once, though two instances sweep', async () => {
  const socket = await openSocket(socketUrl(second));
  await socket.next(isEvent('online-users-count'));
  const users = Array.from({ length: 20 }, (_, i) => `quiet-${i}`);
  await Promise.all(
    users.map((id) => call(first, 'POST', '/users/ping', KEYS.access, { id, status: 'busy' })),
  );
  const pinged = (await call(first, 'GET', '/users/list/all', KEYS.access)).body.data;
  const pingTimes = new Map(pinged.map((u: { user: string; time: number }) => [u.user, u.time]));

  // No request from here on: the sweeps alone make the change.
  const final = await socket.next(
    isEvent('online-users-count', (data) => data.away === 20 && data.busy === 0),
    6_000,
  );
  expect(final.data).toEqual({ available: 0, busy: 0, away: 20 });
  await sleep(1_500);
  const aways = socket.all('presence-change').filter((frame) => frame.data.status === 'away');
  expect(aways.map((frame) => frame.data.user).sort()).toEqual([...users].sort());
  for (const { data } of aways) {
    expect(data.previous).toBe('busy');
    // The time the user went away: the last ping plus the timeout, not when a sweep saw it.
    expect(data.time - (pingTimes.get(data.user) as number)).toBeGreaterThanOrEqual(0);
    expect(data.time - (pingTimes.get(data.user) as number)).toBeLessThanOrEqual(2);
  }
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from presently.status_changes where status = 'away'`.execute(
    realtime.db,
  );
  expect(rows[0]?.n).toBe(20);
  await socket.close();
});
