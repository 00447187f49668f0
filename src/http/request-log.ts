import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../logger.js';
import { loggableQuery, requestLogger } from './request-context.js';

/**
 * One line per request: method, path, query (keys taken out) and outcome, with the request's
 * id. No header is logged, so keys stay out of the logs. Successes are debug-level: a presence
 * service answers heartbeats all day long.
 */
export function requestLog(appLogger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const status = c.res.status;
    const level =
      status === 503 ? 'warn' : status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
    if (!appLogger.isLevelEnabled(level)) return;
    const logger = requestLogger(c, appLogger);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const query = loggableQuery(c.req.url);
    logger[level]({ method: c.req.method, path: c.req.path, query, status, ms }, 'request');
  };
}
