import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

export interface RateLimiter {
  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string): boolean;
  /** How many keys it holds a bucket for: what the sweep keeps to the recently active. */
  readonly size: number;
  stop(): void;
}

/** Buckets idle this long are full again and forgotten, so the map holds only active clients. */
const FORGET_AFTER_MS = 10_000;

/**
 * Token buckets per key (a client address): `perSecond` tokens a second, up to `burst` saved.
 * In memory, per instance: a limit on what one client can make one instance do.
 */
export function createRateLimiter(options: { perSecond: number; burst: number }): RateLimiter {
  const { perSecond, burst } = options;
  const buckets = new Map<string, { tokens: number; at: number }>();
  const sweep = setInterval(() => {
    const before = Date.now() - FORGET_AFTER_MS;
    for (const [key, bucket] of buckets) if (bucket.at < before) buckets.delete(key);
  }, FORGET_AFTER_MS);
  sweep.unref();
  return {
    take(key) {
      const now = Date.now();
      const bucket = buckets.get(key) ?? { tokens: burst, at: now };
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
      bucket.at = now;
      buckets.set(key, bucket);
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      return true;
    },
    get size() {
      return buckets.size;
    },
    stop: () => clearInterval(sweep),
  };
}

/** The address a request came from; requests not from a socket (tests) share one bucket. */
export function clientAddress(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? 'local';
}

/** 429 with Retry-After for an address over its request rate; nothing else is done. */
export function limitRequests(limiter: RateLimiter | undefined): MiddlewareHandler {
  if (!limiter) return (_c, next) => next();
  return async (c, next) => {
    if (!limiter.take(clientAddress(c))) {
      throw new AppError('rate_limited', 429, 'too many requests from this address; slow down');
    }
    await next();
  };
}
