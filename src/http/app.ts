import { Hono } from 'hono';
import type { Logger } from '../logger.js';
import { notFound, onError } from './errors.js';
import { requestLog } from './request-log.js';
import { databaseRoutes } from './routes/database.js';
import type { RouteDeps } from './routes/deps.js';
import { userRoutes } from './routes/users.js';

export interface AppDeps extends RouteDeps {
  logger: Logger;
}

/** The HTTP application: routes, keys and errors. It holds no state of its own. */
export function createApp(deps: AppDeps) {
  const app = new Hono()
    .use(requestLog(deps.logger))
    .route('/users', userRoutes(deps))
    .route('/database', databaseRoutes(deps));
  app.notFound(notFound);
  app.onError(onError(deps.logger));
  return app;
}

export type App = ReturnType<typeof createApp>;
