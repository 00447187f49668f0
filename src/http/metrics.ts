import { createRoute } from '@hono/zod-openapi';
import { Hono, type MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { z } from 'zod';
import { requireKey } from '../edge/auth.js';
import type { Keys } from '../keys.js';
import type { Metrics } from '../metrics/metrics.js';
import { methodNotAllowed } from './errors.js';
import { errorResponses, KEY_SECURITY } from './schemas.js';

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
    // The last route matched is the one that answered; when it is the app's middleware (`use`:
    // any method, `/*`), no route did.
    const last = matchedRoutes(c).at(-1);
    const route =
      !last || (last.method === 'ALL' && (last.path === '/*' || last.path === '*'))
        ? UNMATCHED
        : last.path;
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
  const guard: MiddlewareHandler = metricsPublic ? (_c, next) => next() : requireKey([keys.system]);
  return new Hono()
    .get('/metrics', guard, async (c) => {
      const text = await metrics.registry.metrics();
      c.header('Cache-Control', 'no-store');
      return c.body(text, 200, { 'Content-Type': metrics.registry.contentType });
    })
    .all('/metrics', guard, methodNotAllowed('GET, HEAD'));
}

export const metricsRouteDocs = [
  createRoute({
    method: 'get',
    path: '/metrics',
    tags: ['system'],
    summary: 'Prometheus metrics',
    description: 'Needs the system key, unless METRICS_PUBLIC=true.',
    security: KEY_SECURITY,
    responses: {
      200: {
        description: 'The metrics, in the Prometheus text format',
        content: { 'text/plain': { schema: z.string() } },
      },
      ...errorResponses(401),
    },
  }),
];
