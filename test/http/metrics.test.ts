import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS } from '../helpers/http.js';
import { socketUrl, useRealtime } from '../helpers/realtime.js';
import type { RunningService } from '../helpers/service.js';
import { isEvent, openSocket } from '../helpers/socket.js';
import { waitFor } from '../helpers/wait.js';

// The real service (src/main.ts) scraped over HTTP, as Prometheus would.

const realtime = useRealtime();
let service: RunningService;
beforeAll(async () => {
  service = await realtime.start();
});
afterAll(() => service.stop());

async function scrape(target = service, key: string | null = KEYS.system) {
  const query = key === null ? '' : `?key=${key}`;
  const response = await fetch(`http://127.0.0.1:${target.port}/metrics${query}`);
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    text: await response.text(),
  };
}

/** The value of one sample, `name{labels}`, or undefined when the series is absent. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]),
    );
    if (Object.entries(labels).every(([label, value]) => found[label] === value)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

const pings = (transport: string, outcome: string) => async () =>
  sample((await scrape()).text, 'presently_pings_total', { transport, outcome }) ?? 0;

async function post(path: string, body: unknown, key = KEYS.access) {
  const response = await fetch(`http://127.0.0.1:${service.port}${path}?key=${key}`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  await response.body?.cancel();
  return response.status;
}

describe('/metrics', () => {
  it('takes the system key: 401 without one or with the user key', async () => {
    expect((await scrape(service, null)).status).toBe(401);
    expect((await scrape(service, KEYS.access)).status).toBe(401);
    const answer = await scrape();
    expect(answer.status).toBe(200);
    expect(answer.type).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('is open with METRICS_PUBLIC=true', async () => {
    const open = await realtime.start({ METRICS_PUBLIC: 'true' });
    try {
      const answer = await scrape(open, null);
      expect(answer.status).toBe(200);
      expect(answer.text).toContain('# TYPE presently_pings_total counter');
    } finally {
      expect(await open.stop()).toBe(0);
    }
  });

  it('names every metric, Node process metrics included', async () => {
    const { text } = await scrape();
    for (const name of [
      'presently_pings_total',
      'presently_ping_batch_size',
      'presently_sockets_open',
      'presently_changes_published_total',
      'presently_change_publish_lag_seconds',
      'presently_listener_reconnects_total',
      'presently_db_pool_connections',
      'presently_db_pool_idle_connections',
      'presently_db_pool_waiting_requests',
      'presently_http_request_duration_seconds',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(sample(text, 'presently_listener_reconnects_total')).toBe(0);
  });
});

describe('pings', () => {
  it('counts HTTP pings by outcome, from the status of POST /users/ping', async () => {
    const stored = await pings('http', 'stored')();
    const refused = await pings('http', 'refused')();
    const batches = sample((await scrape()).text, 'presently_ping_batch_size_count') ?? 0;
    expect(await post('/users/ping', { id: 'metrics-http', status: 'busy' })).toBe(200);
    expect(await post('/users/ping', { id: 'metrics-http', status: 'gone' })).toBe(400);
    expect(await post('/users/ping', { id: 'x', status: 'busy' }, 'wrong-key')).toBe(401);

    const { text } = await scrape();
    expect(sample(text, 'presently_pings_total', { transport: 'http', outcome: 'stored' })).toBe(
      stored + 1,
    );
    expect(sample(text, 'presently_pings_total', { transport: 'http', outcome: 'refused' })).toBe(
      refused + 2,
    );
    expect(sample(text, 'presently_pings_total', { transport: 'http', outcome: 'failed' })).toBe(0);
    expect(sample(text, 'presently_ping_batch_size_count')).toBe(batches + 1);
  });

  it('counts socket pings, and the socket while it is open', async () => {
    const stored = await pings('socket', 'stored')();
    const refused = await pings('socket', 'refused')();
    const socket = await openSocket(socketUrl(service));
    try {
      expect(sample((await scrape()).text, 'presently_sockets_open')).toBe(1);
      socket.send('user-ping', { id: 'metrics-socket', status: 'available' });
      await waitFor(
        'a stored socket ping',
        async () => (await pings('socket', 'stored')()) > stored,
      );
      socket.send('user-ping', { id: '', status: 'available' });
      await socket.next(isEvent('error'));
      expect(await pings('socket', 'refused')()).toBe(refused + 1);
      expect(await pings('socket', 'stored')()).toBe(stored + 1);
    } finally {
      await socket.close();
    }
    await waitFor('the socket gone', async () => {
      return sample((await scrape()).text, 'presently_sockets_open') === 0;
    });
  });
});

describe('changes, pool and requests', () => {
  it('counts published changes and their lag', async () => {
    const before = sample((await scrape()).text, 'presently_changes_published_total') ?? 0;
    await post('/users/ping', { id: 'metrics-change', status: 'busy' });
    await post('/users/ping', { id: 'metrics-change', status: 'available' });
    await waitFor('two more changes published', async () => {
      return (
        (sample((await scrape()).text, 'presently_changes_published_total') ?? 0) >= before + 2
      );
    });
    const { text } = await scrape();
    const lagged = sample(text, 'presently_change_publish_lag_seconds_count') ?? 0;
    expect(lagged).toBe(sample(text, 'presently_changes_published_total'));
    // Read moments after they happened (a busy test machine may take a while: seconds at most).
    expect(sample(text, 'presently_change_publish_lag_seconds_bucket', { le: '5' })).toBe(lagged);
    expect(sample(text, 'presently_change_publish_lag_seconds_sum')).toBeGreaterThan(0);
    expect(sample(text, 'presently_db_pool_connections')).toBeGreaterThan(0);
    expect(sample(text, 'presently_db_pool_waiting_requests')).toBe(0);
  });

  it('labels requests by route pattern, never by the raw path', async () => {
    await fetch(`http://127.0.0.1:${service.port}/users/secret-user-42/status?key=${KEYS.access}`);
    await fetch(`http://127.0.0.1:${service.port}/no/such/path`);
    const { text } = await scrape();
    expect(text).not.toContain('secret-user-42');
    expect(text).not.toContain('/no/such/path');
    const latency = 'presently_http_request_duration_seconds_count';
    expect(
      sample(text, latency, { method: 'GET', route: '/users/:id/status', status: '404' }),
    ).toBe(1);
    expect(sample(text, latency, { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(
      sample(text, latency, { method: 'POST', route: '/users/ping', status: '200' }),
    ).toBeGreaterThan(0);
  });
});
