import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../logger.js';
import { loggableQuery, requestLogger } from './request-context.js';

/**
 * Refusals: no key, a foreign origin, no such route or method, over the rate limit. A client
 * that is refused is refused on every request, as fast as the rate limit lets it ask: at info,
 * one such client would write megabytes of log a second.
 */
const REFUSALS = new Set([401, 403, 404, 405, 429]);

/**
 * One line per request: method, path, query (keys taken out) and outcome, with the request's
 * id. No header is logged, so keys stay out of the logs. Successes and refusals are debug-level
 * (a presence service answers heartbeats all day long); other client errors are info, and
 * failures stay visible: 503 (the database away) at warn, any other 5xx at error.
 */
export function requestLog(appLogger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const level = levelFor(status);
    if (!appLogger.isLevelEnabled(level)) return;
    const logger = requestLogger(c, appLogger);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const query = loggableQuery(c.req.url);
    logger[level]({ method: c.req.method, path: c.req.path, query, status, ms }, 'request');
  };
}

function levelFor(status: number): 'debug' | 'info' | 'warn' | 'error' {
  if (status === 503) return 'warn';
  if (status >= 500) return 'error';
  if (status >= 400 && !REFUSALS.has(status)) return 'info';
  return 'debug';
}
