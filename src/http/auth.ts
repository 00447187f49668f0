import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Lets a request through when it carries one of the accepted keys, as `?key=` or as
 * `Authorization: Bearer`. Keys are compared as fixed-length digests in constant time, so
 * neither their content nor their length leaks through timing.
 */
export function requireKey(accepted: string[]): MiddlewareHandler {
  const acceptedDigests = accepted.map(digest);
  return async (c, next) => {
    const candidates = presentedKeys(c.req.query('key'), c.req.header('Authorization'));
    let match = false;
    for (const candidate of candidates) {
      const candidateDigest = digest(candidate);
      for (const key of acceptedDigests) {
        // No short-circuit: every comparison runs whatever the outcome.
        match = timingSafeEqual(candidateDigest, key) || match;
      }
    }
    if (!match) {
      const message =
        candidates.length === 0
          ? 'a key is required: ?key=... or Authorization: Bearer ...'
          : 'the key is not valid for this route';
      throw new AppError('unauthorized', 401, message);
    }
    await next();
  };
}

function presentedKeys(query: string | undefined, authorization: string | undefined): string[] {
  const keys: string[] = [];
  if (query) keys.push(query);
  const bearer = authorization?.match(/^Bearer[ ]+(\S+)\s*$/i)?.[1];
  if (bearer) keys.push(bearer);
  return keys;
}
