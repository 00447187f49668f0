import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { AppError } from '../errors.js';

/** Origins besides the service's own that browsers may use: a list, or '*' for any. */
export type AllowedOrigins = string[] | '*';

/**
 * CORS for the configured origins (CORS_ORIGINS). With none configured, no CORS headers are
 * sent, and browsers keep other sites' pages from reading the API.
 */
export function corsFor(origins: AllowedOrigins): MiddlewareHandler {
  if (origins !== '*' && origins.length === 0) return (_c, next) => next();
  return cors({
    origin: origins,
    allowMethods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposeHeaders: ['Link', 'Retry-After', 'X-Request-Id'],
    maxAge: 600,
  });
}

/**
 * Browsers send the page's Origin with a WebSocket upgrade, and do not apply CORS to sockets: a
 * page on another site could otherwise open one with a key it got hold of. Clients other than
 * browsers send no Origin and are not concerned.
 */
export function checkSocketOrigin(origins: AllowedOrigins): MiddlewareHandler {
  return async (c, next) => {
    checkOrigin(c.req.header('Origin'), c.req.header('Host'), origins);
    await next();
  };
}

/**
 * The check itself, for any transport: a request with an Origin (a browser's) must come from the
 * service's own host or an allowed origin; throws 403 `origin_not_allowed` otherwise.
 */
export function checkOrigin(
  origin: string | undefined,
  host: string | undefined,
  origins: AllowedOrigins,
): void {
  if (origin === undefined || isAllowed(origin, host, origins)) return;
  throw new AppError(
    'origin_not_allowed',
    403,
    'this origin may not open sockets here; see CORS_ORIGINS',
  );
}

function isAllowed(origin: string, host: string | undefined, origins: AllowedOrigins): boolean {
  if (origins === '*' || origins.includes(origin)) return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
