import {
  type ConnectionInfo,
  createPresenceSocket,
  createPresenceState,
  createRestClient,
  type PresenceChange,
  type PresenceSocket,
  type PresenceSocketOptions,
} from 'presently-client';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { KEYS } from '../../../test/helpers/http.js';
import { useRealtime } from '../../../test/helpers/realtime.js';
import { call, type RunningService } from '../../../test/helpers/service.js';
import { closedPort, waitFor } from '../../../test/helpers/wait.js';

// The typed clients against the real service: the socket client (Node 20, so with `ws`) keeps
// a state current, reconnects and resumes; the REST client is typed from the app itself.

const realtime = useRealtime();
let service: RunningService;
let base: string;

beforeAll(async () => {
  service = await realtime.start();
  base = `http://127.0.0.1:${service.port}`;
});
beforeEach(async () => {
  expect((await call(service, 'GET', '/database/clear', KEYS.system)).status).toBe(200);
});

const ping = (id: string, status: string) =>
  call(service, 'POST', '/users/ping', KEYS.access, { id, status });

/** `ws`, recording every socket made, and refusing to connect while `offline`. */
function recordingWebSocket() {
  const made: { url: string; socket: WebSocket }[] = [];
  const control = { offline: false, made };
  class Recording extends WebSocket {
    constructor(url: string) {
      if (control.offline) throw new Error('offline (test)');
      super(url);
      made.push({ url, socket: this });
    }
  }
  return { Recording, control };
}

const opened: PresenceSocket[] = [];
afterEach(() => {
  for (const socket of opened.splice(0)) socket.close();
});

function follow(options: Partial<PresenceSocketOptions> = {}) {
  const { Recording, control } = recordingWebSocket();
  const states: ConnectionInfo[] = [];
  const changes: PresenceChange[] = [];
  const socket = createPresenceSocket({
    url: base,
    key: KEYS.access,
    WebSocket: Recording,
    backoff: { initialMs: 50, maxMs: 200 },
    on: { state: (info) => states.push(info), change: (change) => changes.push(change) },
    ...options,
  });
  opened.push(socket);
  const state = createPresenceState();
  state.follow(socket);
  return { socket, state, control, states, changes };
}

describe('the socket client', () => {
  it('takes the snapshot, then follows changes made over REST and over the socket', async () => {
    await ping('ann', 'available');
    const { socket, state } = follow();
    await waitFor('the first snapshot', () => state.users.get('ann')?.status === 'available');
    expect(socket.state).toBe('open');

    await ping('ann', 'busy');
    await waitFor('ann busy', () => state.users.get('ann')?.status === 'busy');
    expect(socket.ping('bob', 'available')).toBe(true);
    await waitFor('bob', () => state.users.get('bob')?.status === 'available');
    await waitFor('the counts', () => state.counts.available === 1 && state.counts.busy === 1);
    expect(state.list('busy').map((user) => user.user)).toEqual(['ann']);
    expect(socket.position).toBeGreaterThan(0);
  });

  it('reconnects after a drop and resumes: a change made meanwhile arrives, once', async () => {
    const { socket, state, control, states, changes } = follow();
    await waitFor('the first snapshot', () => state.complete);
    await ping('ann', 'available');
    await waitFor('the change', () => changes.length === 1);
    const before = socket.position as number;

    control.offline = true;
    control.made.at(-1)?.socket.terminate();
    await waitFor('the drop to be seen', () => socket.state === 'waiting');
    await ping('ann', 'busy');
    await ping('cat', 'available');
    control.offline = false;

    await waitFor('the missed changes', () => state.users.get('cat')?.status === 'available');
    expect(state.users.get('ann')?.status).toBe('busy');
    expect(control.made.at(-1)?.url).toContain(`since=${before}`);
    const positions = changes.map((change) => change.position);
    expect(new Set(positions).size).toBe(positions.length);
    expect(states.some((info) => info.state === 'waiting' && info.attempt >= 1)).toBe(true);
  });

  it('follows a watch list: those users only, the global counts, kept across reconnections', async () => {
    for (const id of ['ann', 'bob', 'cat']) await ping(id, 'available');
    const { socket, state, control, changes } = follow({ users: ['ann', 'dan'] });
    await waitFor('the list of ann', () => state.users.get('ann')?.status === 'available');
    await waitFor('the counts', () => state.counts.available === 3);
    expect([...state.users.keys()]).toEqual(['ann']);
    expect(control.made.at(-1)?.url).toContain('users=none');

    await ping('bob', 'busy');
    await ping('dan', 'busy');
    await waitFor(
      'dan, followed before he was known',
      () => state.users.get('dan')?.status === 'busy',
    );
    await waitFor('the counts of bob too', () => state.counts.busy === 2);
    expect(changes.map((change) => change.user)).toEqual(['dan']);

    expect(socket.subscribe(['bob'])).toBe(true);
    await waitFor('the list of bob', () => [...state.users.keys()].join() === 'bob');
    control.made.at(-1)?.socket.terminate();
    await waitFor('a new connection', () => control.made.length === 2 && socket.state === 'open');
    await ping('bob', 'available');
    await waitFor('bob again', () => state.users.get('bob')?.status === 'available');
    expect([...state.users.keys()]).toEqual(['bob']);
    expect(socket.users).toEqual(['bob']);

    expect(socket.subscribe('none')).toBe(true);
    await ping('ann', 'busy');
    // ann, bob and cat available, dan busy; then ann busy: counts reach a socket following nobody.
    await waitFor('the counts only', () => state.counts.busy === 2 && state.counts.available === 2);
    expect(changes.map((change) => change.user)).toEqual(['dan', 'bob']);
  });

  it('after a resync, drops what it held and takes the next snapshot', async () => {
    await ping('ann', 'busy');
    const resyncs: string[] = [];
    const { socket, state } = follow({
      since: 10 ** 12,
      on: { resync: ({ reason }) => resyncs.push(reason) },
    });
    state.applyList([{ user: 'ghost', status: 'available', time: 1 }]);
    await waitFor('the resync', () => resyncs.length === 1);
    await waitFor('the snapshot after it', () => state.complete && state.users.has('ann'));
    expect(resyncs).toEqual(['unknown_position']);
    expect(state.users.has('ghost')).toBe(false);
    expect(socket.position).toBeLessThan(10 ** 12);
  });

  it('backs off, capped, while the service is unreachable; close() stops it', async () => {
    const { socket, states } = follow({
      url: `http://127.0.0.1:${await closedPort()}`,
      backoff: { initialMs: 10, maxMs: 80, random: () => 0.999 },
    });
    await waitFor('five retries', () => states.filter((s) => s.state === 'waiting').length >= 5);
    const delays = states.flatMap((s) => (s.state === 'waiting' ? [s.retryInMs as number] : []));
    expect(delays.slice(0, 5)).toEqual([10, 20, 40, 80, 80]);
    expect(socket.ping('ann', 'busy')).toBe(false);

    socket.close();
    const seen = states.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(states.slice(seen - 1).map((s) => s.state)).toEqual(['closed']);
  });
});

describe('the REST client', () => {
  it('is typed from the app, and sends the key as a bearer token', async () => {
    await ping('ann', 'busy');
    const answer = await createRestClient(base, KEYS.access).users.count.$get();
    expect(answer.status).toBe(200);
    const { data } = await answer.json();
    expect(data).toEqual({ available: 0, busy: 1, away: 0 });

    const refused = await createRestClient(base, 'wrong').users.count.$get();
    expect(refused.status).toBe(401);
  });
});
