import { hash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';
import type { Keys } from '../keys.js';

/** One call, no Hash object: a third of what createHash().update().digest() costs a request. */
const digest = (value: string) => hash('sha256', value, 'buffer');

/**
 * Lets a request through when it carries a key, as `?key=` or as `Authorization: Bearer`, and
 * every key it carries is one of the accepted ones: a request with a wrong key is refused even
 * if it also has a right one. Keys are compared as fixed-length digests in constant time, so
 * neither their content nor their length leaks through timing.
 */
export function requireKey(accepted: string[]): MiddlewareHandler {
  const check = createKeyCheck(accepted);
  return async (c, next) => {
    check(presentedKeys(c.req.queries('key'), c.req.header('Authorization')));
    await next();
  };
}

/**
 * The key check itself, for any transport: throws 401 `unauthorized` unless `candidates` (every
 * key the request carries) is not empty and every one of them is accepted.
 */
export function createKeyCheck(accepted: string[]): (candidates: string[]) => void {
  const acceptedDigests = accepted.map(digest);
  return (candidates) => {
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
  };
}

/** User routes and the socket: the access key, and the system key wherever the access key is. */
export function requireUserKey(keys: Keys): MiddlewareHandler {
  return requireKey([keys.access, keys.system]);
}

/** Every `key` parameter, empty ones included, and the bearer token; other schemes are not ours. */
export function presentedKeys(
  query: string[] | undefined,
  authorization: string | undefined,
): string[] {
  const keys = [...(query ?? [])];
  const bearer = bearerToken(authorization);
  if (bearer !== undefined) keys.push(bearer);
  return keys;
}

/**
 * The token of `Authorization: Bearer <token>` (case-insensitive scheme, spaces before the token,
 * whitespace after it), '' for a bearer without one, undefined for any other header. Read by
 * scanning, in time linear in the header's length: a header is the client's to make as long as
 * the server takes, and a backtracking pattern over it would be theirs to make slow.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const header = authorization.trimEnd();
  if (header.slice(0, BEARER.length).toLowerCase() !== BEARER) return undefined;
  const rest = header.slice(BEARER.length);
  let start = 0;
  while (rest[start] === ' ') start++;
  if (start === 0) return rest === '' ? '' : undefined;
  const token = rest.slice(start);
  return /\s/.test(token) ? undefined : token;
}

const BEARER = 'bearer';
