import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';
import type { Keys } from '../keys.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Lets a request through when it carries a key, as `?key=` or as `Authorization: Bearer`, and
 * every key it carries is one of the accepted ones: a request with a wrong key is refused even
 * if it also has a right one. Keys are compared as fixed-length digests in constant time, so
 * neither their content nor their length leaks through timing.
 */
export function requireKey(accepted: string[]): MiddlewareHandler {
  const acceptedDigests = accepted.map(digest);
  return async (c, next) => {
    const candidates = presentedKeys(c.req.queries('key'), c.req.header('Authorization'));
    let allMatch = candidates.length > 0;
    for (const candidate of candidates) {
      const candidateDigest = digest(candidate);
      let match = false;
      for (const key of acceptedDigests) {
        // No short-circuit: every comparison runs whatever the outcome.
        match = timingSafeEqual(candidateDigest, key) || match;
      }
      allMatch = allMatch && match;
    }
    if (!allMatch) {
      const message =
        candidates.length === 0
          ? 'a key is required: ?key=... or Authorization: Bearer ...'
          : 'the key is not valid for this route';
      throw new AppError('unauthorized', 401, message);
    }
    await next();
  };
}

/** User routes and the socket: the access key, and the system key wherever the access key is. */
export function requireUserKey(keys: Keys): MiddlewareHandler {
  return requireKey([keys.access, keys.system]);
}

/** Every `key` parameter, empty ones included, and the bearer token; other schemes are not ours. */
function presentedKeys(query: string[] | undefined, authorization: string | undefined): string[] {
  const keys = [...(query ?? [])];
  const bearer = authorization?.match(/^Bearer(?:[ ]+(\S*))?\s*$/i);
  if (bearer) keys.push(bearer[1] ?? '');
  return keys;
}
