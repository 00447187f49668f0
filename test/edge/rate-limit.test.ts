import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clientAddress, createRateLimiter } from '../../src/edge/rate-limit.js';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';

// The request rate per client address (LIMIT_REQUESTS_PER_SECOND).

const database = useTestDatabase();

describe('the rate limiter, on a clock of its own', () => {
  // Only the clock (and the sweep's timer) is faked: the buckets are filled by Date.now(), so a
  // slow machine changes nothing.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('lets a burst through, then refills at the rate, per address', () => {
    const limiter = createRateLimiter({ perSecond: 20, burst: 5 });
    try {
      const first = Array.from({ length: 6 }, () => limiter.take('a'));
      expect(first).toEqual([true, true, true, true, true, false]);
      // Another address has a bucket of its own.
      expect(limiter.take('b')).toBe(true);
      // 120 ms at 20 a second: two tokens and a bit.
      vi.setSystemTime(Date.now() + 120);
      const after = Array.from({ length: 3 }, () => limiter.take('a'));
      expect(after).toEqual([true, true, false]);
    } finally {
      limiter.stop();
    }
  });

  it('saves no more than the burst, however long a client was quiet', () => {
    const limiter = createRateLimiter({ perSecond: 10, burst: 5 });
    try {
      const takes = (n: number) => Array.from({ length: n }, () => limiter.take('a'));
      expect(takes(6)).toEqual([true, true, true, true, true, false]);
      // Ten seconds at 10 a second would be 100 tokens: only the burst is kept.
      vi.setSystemTime(Date.now() + 10_000);
      expect(takes(6)).toEqual([true, true, true, true, true, false]);
      // A tenth of a second: one token.
      vi.setSystemTime(Date.now() + 100);
      expect(takes(2)).toEqual([true, false]);
    } finally {
      limiter.stop();
    }
  });

  it('forgets, every 10 s, the addresses idle for longer than that, and only those', () => {
    const limiter = createRateLimiter({ perSecond: 10, burst: 5 });
    try {
      limiter.take('idle');
      // The first sweep: 'idle' has been idle exactly 10 s, not longer.
      vi.advanceTimersByTime(10_000);
      expect(limiter.size).toBe(1);
      limiter.take('active');
      expect(limiter.size).toBe(2);
      // The second: 'idle' is 20 s idle and goes; 'active' (10 s) stays.
      vi.advanceTimersByTime(10_000);
      expect(limiter.size).toBe(1);
      vi.advanceTimersByTime(10_000);
      expect(limiter.size).toBe(0);
    } finally {
      limiter.stop();
    }
  });

  it('leaves no timer behind once stopped', () => {
    const limiter = createRateLimiter({ perSecond: 10, burst: 5 });
    expect(vi.getTimerCount()).toBe(1);
    limiter.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('the address a request is counted against', () => {
  const app = new Hono().get('/', (c) => c.text(clientAddress(c)));
  const addressOf = async (env?: unknown) => (await app.request('/', {}, env)).text();

  it("is the socket's remote address", async () => {
    const env = { incoming: { socket: { remoteAddress: '10.1.2.3' } } };
    expect(await addressOf(env)).toBe('10.1.2.3');
  });

  it('is one key shared by every request not from a socket, whatever the adapter gives', async () => {
    const shared = await addressOf(undefined);
    expect(shared).not.toBe('10.1.2.3');
    for (const env of [{}, { incoming: {} }, { incoming: { socket: {} } }]) {
      expect(await addressOf(env)).toBe(shared);
    }
  });
});

describe('a client over the limit', () => {
  it('gets 429 with Retry-After, and what it asked is not done', async () => {
    const limiter = createRateLimiter({ perSecond: 1, burst: 3 });
    const app = testApp(database.db, { requestLimiter: limiter });
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await request(app, 'GET', '/users/count');
        expect(answer.status).toBe(200);
      }
      const refused = await request(app, 'POST', '/users/ping', {
        body: { id: 'flood', status: 'busy' },
      });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('Retry-After')).toBe('1');
      expect(refused.body.error).toMatchObject({
        code: 'rate_limited',
        message: 'too many requests from this address; slow down',
      });
      expect(await presenceRows(database.db)).toEqual([]);
    } finally {
      limiter.stop();
    }
  });
});

describe('clients at different addresses', () => {
  it('have a bucket each, on a real server', async () => {
    const limiter = createRateLimiter({ perSecond: 0.001, burst: 1 });
    const app = testApp(database.db, { requestLimiter: limiter });
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    // 127.0.0.2 is another address of the loopback interface (Linux): a client of its own.
    const status = (localAddress: string) =>
      new Promise<number>((resolve, reject) => {
        const path = `/users/count?key=${KEYS.access}`;
        http
          .get({ host: '127.0.0.1', port, path, localAddress, agent: false }, (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          })
          .once('error', reject);
      });
    try {
      expect(await status('127.0.0.1')).toBe(200);
      expect(await status('127.0.0.1')).toBe(429);
      expect(await status('127.0.0.2')).toBe(200);
      expect(await status('127.0.0.2')).toBe(429);
    } finally {
      limiter.stop();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
