import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../src/http/rate-limit.js';
import { presenceRows, useTestDatabase } from '../helpers/database.js';
import { request, testApp } from '../helpers/http.js';

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
