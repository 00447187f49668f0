import { createRoute } from '@hono/zod-openapi';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { requireKey } from '../../edge/auth.js';
import { clearAll } from '../../presence/repository.js';
import { methodNotAllowed } from '../errors.js';
import { dataOf, errorResponses, json, KEY_SECURITY } from '../schemas.js';
import type { RouteDeps } from './deps.js';

export function databaseRoutes({ db, keys }: RouteDeps) {
  const systemKey = requireKey([keys.system]);
  const onlyGet = methodNotAllowed('GET');
  const clear = async (c: Context) => {
    // Hono answers HEAD with the GET handler; a HEAD (a probe, a link checker) must never
    // erase anything.
    if (c.req.method === 'HEAD') return onlyGet(c);
    await clearAll(db);
    return c.json({ data: 'success' as const });
  };
  return (
    new Hono()
      .get('/clear', systemKey, clear)
      .all('/clear', systemKey, onlyGet)
      // The same for clients that can avoid a destructive GET.
      .delete('/', systemKey, clear)
      .all('/', systemKey, methodNotAllowed('DELETE'))
  );
}

export const databaseRouteDocs = [
  createRoute({
    method: 'get',
    path: '/database/clear',
    tags: ['system'],
    summary: 'Forget every user and every record of them',
    description: 'Needs the system key. HEAD is refused, so that a probe never clears anything.',
    security: KEY_SECURITY,
    responses: {
      200: json('Cleared', dataOf(z.literal('success'))),
      ...errorResponses(401, 405, 503),
    },
  }),
  createRoute({
    method: 'delete',
    path: '/database',
    tags: ['system'],
    summary: 'Forget every user and every record of them (as GET /database/clear)',
    description: 'Needs the system key.',
    security: KEY_SECURITY,
    responses: {
      200: json('Cleared', dataOf(z.literal('success'))),
      ...errorResponses(401, 405, 503),
    },
  }),
];
