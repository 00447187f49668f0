import { Hono } from 'hono';
import { clearAll } from '../../presence/repository.js';
import { requireKey } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import type { RouteDeps } from './deps.js';

export function databaseRoutes({ db, keys }: RouteDeps) {
  const systemKey = requireKey([keys.system]);
  const onlyGet = methodNotAllowed('GET');
  return new Hono()
    .get('/clear', systemKey, async (c) => {
      // Hono answers HEAD with the GET handler; a HEAD (a probe, a link checker) must never
      // erase anything.
      if (c.req.method === 'HEAD') return onlyGet(c);
      await clearAll(db);
      return c.json({ data: 'success' as const });
    })
    .all('/clear', systemKey, onlyGet);
}
