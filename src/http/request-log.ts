import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../logger.js';

/**
 * One line per request: method, path and outcome. The path never includes the query string,
 * and no header is logged, so keys stay out of the logs. Successes are debug-level: a presence
 * service answers heartbeats all day long.
 */
export function requestLog(logger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const level =
      status === 503 ? 'warn' : status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
    if (!logger.isLevelEnabled(level)) return;
    const ms = Math.round((performance.now() - started) * 10) / 10;
    logger[level]({ method: c.req.method, path: c.req.path, status, ms }, 'request');
  };
}
