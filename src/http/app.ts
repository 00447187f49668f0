import { Hono } from 'hono';
import type { Readiness } from '../db/readiness.js';
import { type AllowedOrigins, corsFor } from '../edge/origins.js';
import { limitRequests, type RateLimiter } from '../edge/rate-limit.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Broadcaster } from '../realtime/broadcaster.js';
import type { SocketHub } from '../realtime/hub.js';
import { notFound, onError } from './errors.js';
import { healthRouteDocs, healthRoutes } from './health.js';
import { httpMetrics, metricsRouteDocs, metricsRoutes } from './metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import { requestContext } from './request-context.js';
import { requestLog } from './request-log.js';
import { securityHeaders } from './response-headers.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { databaseRouteDocs, databaseRoutes } from './routes/database.js';
import type { RouteDeps } from './routes/deps.js';
import { docsRoutes } from './routes/docs.js';
import { userHistoryRouteDocs, userHistoryRoutes } from './routes/history.js';
import { reportRouteDocs, reportRoutes } from './routes/reports.js';
import { sessionRouteDocs, sessionRoutes } from './routes/sessions.js';
import { socketRouteDocs, socketRoutes } from './routes/socket.js';
import { userRouteDocs, userRoutes } from './routes/users.js';
import { refuseUpgradesExcept } from './upgrades.js';

export interface AppDeps extends RouteDeps {
  hub: SocketHub;
  broadcaster: Broadcaster;
  readiness: Readiness;
  metrics: Metrics;
  /** /metrics without a key. */
  metricsPublic: boolean;
  /** Other origins browsers may use (CORS_ORIGINS); default none. */
  corsOrigins?: AllowedOrigins;
  /** Requests per client address (LIMIT_REQUESTS_PER_SECOND); absent: no limit. */
  requestLimiter?: RateLimiter;
  /** LIMIT_SOCKETS_PER_ADDRESS, LIMIT_FRAMES_PER_SECOND, LIMIT_WATCH_USERS; absent: no limits. */
  socketLimits?: { perAddress: number; framesPerSecond: number; watchUsers?: number };
}

/** Every route /openapi.json describes (a test checks the app has exactly these). */
export const ROUTE_DOCS = [
  ...healthRouteDocs,
  ...metricsRouteDocs,
  ...userRouteDocs,
  ...userHistoryRouteDocs,
  ...sessionRouteDocs,
  ...reportRouteDocs,
  ...databaseRouteDocs,
  ...socketRouteDocs,
];

/**
 * The HTTP application: routes, keys, errors and the socket endpoint. It holds no state of its
 * own: sockets live in the hub it is given.
 */
export function createApp(deps: AppDeps) {
  const app = new Hono()
    .use(requestContext())
    .use(requestLog(deps.logger))
    .use(httpMetrics(deps.metrics))
    .use(securityHeaders())
    .use(corsFor(deps.corsOrigins ?? []))
    .use(limitRequests(deps.requestLimiter))
    .use(refuseUpgradesExcept('/ws'))
    // Probes and scrapers first, before any route that asks for the access key.
    .route('/', healthRoutes(deps))
    .route('/', metricsRoutes(deps))
    .route('/', docsRoutes(buildOpenApiDocument(ROUTE_DOCS)))
    // Per-user routes first: `/users/list/status` is the status of the user "list" (no list
    // is called "status").
    .route('/users', userHistoryRoutes(deps))
    .route('/users', sessionRoutes(deps))
    .route('/users', userRoutes(deps))
    .route('/reports', reportRoutes(deps))
    .route('/database', databaseRoutes(deps))
    .route('/ws', socketRoutes(deps));
  // The dashboard page and its assets: no key (the page asks for one), and not part of App.
  app.route('/', dashboardRoutes());
  app.notFound(notFound);
  app.onError(onError(deps.logger));
  return app;
}

export type App = ReturnType<typeof createApp>;
