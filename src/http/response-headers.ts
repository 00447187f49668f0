import { ServerResponse } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/** What hono/secure-headers' `secureHeaders()` sets by default (a test holds them equal). */
export const SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['Cross-Origin-Opener-Policy', 'same-origin'],
  ['Origin-Agent-Cluster', '?1'],
  ['Referrer-Policy', 'no-referrer'],
  ['Strict-Transport-Security', 'max-age=15552000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-DNS-Prefetch-Control', 'off'],
  ['X-Download-Options', 'noopen'],
  ['X-Frame-Options', 'SAMEORIGIN'],
  ['X-Permitted-Cross-Domain-Policies', 'none'],
  ['X-XSS-Protection', '0'],
];

/**
 * Node's response to this request when @hono/node-server serves it; undefined for a socket
 * upgrade (it has none) and for `app.request` (tests). Headers set on it are merged by Node into
 * the head of whatever answer the app gives, errors included, and the app's answer then needs no
 * Web `Headers` object of its own: building one, filling it and copying it out again cost a
 * ping about 10 µs of CPU (docs/performance.md, "Where a ping's microseconds go").
 */
export function nodeResponse(c: Context): ServerResponse | undefined {
  const outgoing = (c.env as { outgoing?: unknown } | undefined)?.outgoing;
  return outgoing instanceof ServerResponse ? outgoing : undefined;
}

/** The security headers on every answer: on Node's response, or else on the app's answer. */
export function securityHeaders(): MiddlewareHandler {
  const onAnswer = secureHeaders();
  return async (c, next) => {
    const outgoing = nodeResponse(c);
    if (!outgoing) return onAnswer(c, next);
    for (const [name, value] of SECURITY_HEADERS) outgoing.setHeader(name, value);
    await next();
  };
}
