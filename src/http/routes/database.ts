import { Hono } from 'hono';
import { clearAll } from '../../presence/repository.js';
import { requireKey } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import type { RouteDeps } from './deps.js';

export function databaseRoutes({ db, keys }: RouteDeps) {
  return new Hono()
    .get('/clear', requireKey([keys.system]), async (c) => {
      await clearAll(db);
      return c.json({ data: 'success' as const });
    })
    .all('/clear', methodNotAllowed('GET, HEAD'));
}
