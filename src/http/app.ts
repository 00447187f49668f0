import { Hono } from 'hono';
import type { Logger } from '../logger.js';
import type { Broadcaster } from '../ws/broadcaster.js';
import { socketRoutes } from '../ws/endpoint.js';
import type { SocketHub } from '../ws/hub.js';
import { notFound, onError } from './errors.js';
import { requestLog } from './request-log.js';
import { databaseRoutes } from './routes/database.js';
import type { RouteDeps } from './routes/deps.js';
import { userHistoryRoutes } from './routes/history.js';
import { reportRoutes } from './routes/reports.js';
import { userRoutes } from './routes/users.js';
import { refuseUpgradesExcept } from './upgrades.js';

export interface AppDeps extends RouteDeps {
  logger: Logger;
  hub: SocketHub;
  broadcaster: Broadcaster;
}

/**
 * The HTTP application: routes, keys, errors and the socket endpoint. It holds no state of its
 * own: sockets live in the hub it is given.
 */
export function createApp(deps: AppDeps) {
  const app = new Hono()
    .use(requestLog(deps.logger))
    .use(refuseUpgradesExcept('/ws'))
    // Per-user routes first: `/users/list/status` is the status of the user "list" (no list
    // is called "status").
    .route('/users', userHistoryRoutes(deps))
    .route('/users', userRoutes(deps))
    .route('/reports', reportRoutes(deps))
    .route('/database', databaseRoutes(deps))
    .route('/ws', socketRoutes(deps));
  app.notFound(notFound);
  app.onError(onError(deps.logger));
  return app;
}

export type App = ReturnType<typeof createApp>;
