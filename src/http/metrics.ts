import { Hono, type MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Keys } from '../keys.js';
import type { Metrics } from '../metrics/metrics.js';
import { requireKey } from './auth.js';
import { methodNotAllowed } from './errors.js';

/** The label of a request that matched no route: raw paths would make a series per id. */
const UNMATCHED = 'unmatched';

/**
 * Times every request by method, route pattern (`/users/:id/status`, never the path itself)
 * and status, and counts HTTP pings by outcome from the status of `POST /users/ping`.
 */
export function httpMetrics(metrics: Metrics): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    // The last route matched is the one that answered; when only middleware (`/*`) matched,
    // nothing did.
    const pattern = routePath(c, -1);
    const route = pattern === '' || pattern.endsWith('*') ? UNMATCHED : pattern;
    const status = c.res.status;
    metrics.requestServed(c.req.method, route, status, seconds);
    if (c.req.method === 'POST' && route === '/users/ping') {
      metrics.pingHandled('http', status < 400 ? 'stored' : status < 500 ? 'refused' : 'failed');
    }
  };
}

/**
 * `GET /metrics`, Prometheus text format. It reveals traffic, not data, but still takes the
 * system key unless METRICS_PUBLIC says the network in front of it is trusted.
 */
export function metricsRoutes({
  metrics,
  keys,
  metricsPublic,
}: {
  metrics: Metrics;
  keys: Keys;
  metricsPublic: boolean;
}) {
  const guard: MiddlewareHandler = metricsPublic
    ? (_c, next) => next()
    : requireKey([keys.system]);
  return new Hono()
    .get('/metrics', guard, async (c) => {
      const text = await metrics.registry.metrics();
      c.header('Cache-Control', 'no-store');
      return c.body(text, 200, { 'Content-Type': metrics.registry.contentType });
    })
    .all('/metrics', guard, methodNotAllowed('GET, HEAD'));
}
