import { createRoute } from '@hono/zod-openapi';
import { Hono } from 'hono';
import { z } from 'zod';
import type { Readiness } from '../db/readiness.js';
import { methodNotAllowed } from './errors.js';

/**
 * Probes, with no key: `/healthz` says the process answers (liveness: restart it if not);
 * `/readyz` says it can serve (readiness: send it traffic), naming the checks that failed
 * and nothing more.
 */
export function healthRoutes({ readiness }: { readiness: Readiness }) {
  const onlyGet = methodNotAllowed('GET, HEAD');
  return new Hono()
    .get('/healthz', (c) => {
      c.header('Cache-Control', 'no-store');
      return c.json({ status: 'ok' as const });
    })
    .all('/healthz', onlyGet)
    .get('/readyz', async (c) => {
      const { ready, checks } = await readiness.check();
      c.header('Cache-Control', 'no-store');
      return ready
        ? c.json({ status: 'ok' as const, checks }, 200)
        : c.json({ status: 'unavailable' as const, checks }, 503);
    })
    .all('/readyz', onlyGet);
}

const checksSchema = z.object({
  database: z.boolean().meta({ description: 'The database answered `select 1` in time' }),
  migrations: z.boolean().meta({ description: 'Every migration this version has is applied' }),
  listener: z.boolean().meta({ description: 'The change listener is connected and listening' }),
});

export const healthRouteDocs = [
  createRoute({
    method: 'get',
    path: '/healthz',
    tags: ['system'],
    summary: 'Liveness: the process answers',
    responses: {
      200: {
        description: 'Alive',
        content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } },
      },
    },
  }),
  createRoute({
    method: 'get',
    path: '/readyz',
    tags: ['system'],
    summary: 'Readiness: the database, migrations and listener are in order',
    responses: {
      200: {
        description: 'Ready',
        content: {
          'application/json': {
            schema: z.object({ status: z.literal('ok'), checks: checksSchema }),
          },
        },
      },
      503: {
        description: 'Not ready; `checks` says which check failed',
        content: {
          'application/json': {
            schema: z.object({ status: z.literal('unavailable'), checks: checksSchema }),
          },
        },
      },
    },
  }),
];
