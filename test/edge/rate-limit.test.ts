import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { describe, expect, it, vi } from 'vitest';
import { createRateLimiter } from '../../src/edge/rate-limit.js';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { KEYS, request, testApp } from '../helpers/http.js';

// The request rate per client address (LIMIT_REQUESTS_PER_SECOND).

const database = useTestDatabase();

describe('the rate limiter', () => {
  it('lets a burst through, then refills at the rate, per address', async () => {
    const limiter = createRateLimiter({ perSecond: 20, burst: 5 });
    try {
      const first = Array.from({ length: 6 }, () => limiter.take('a'));
      expect(first).toEqual([true, true, true, true, true, false]);
      // Another address has a bucket of its own.
      expect(limiter.take('b')).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(limiter.take('a')).toBe(true);
    } finally {
      limiter.stop();
    }
  });
});

describe('the rate limiter, on a clock of its own', () => {
  it('saves no more than the burst, however long a client was quiet', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
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
      vi.useRealTimers();
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
      expect(refused.body.error.code).toBe('rate_limited');
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
