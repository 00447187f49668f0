import { createRoute } from '@hono/zod-openapi';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { countUsers, listUsers } from '../../presence/repository.js';
import {
  listFilterSchema,
  parseListFilter,
  parsePing,
  pingSchema,
} from '../../presence/validation.js';
import { requireUserKey } from '../auth.js';
import { methodNotAllowed } from '../errors.js';
import {
  countsSchema,
  dataOf,
  errorResponses,
  json,
  KEY_SECURITY,
  userPresenceSchema,
} from '../schemas.js';
import type { RouteDeps } from './deps.js';

export const MAX_BODY_BYTES = 16 * 1024;

const tooLarge = () =>
  new AppError('payload_too_large', 413, `the body must be at most ${MAX_BODY_BYTES} bytes`);

/** For bodies without a Content-Length (chunked): counted as they stream in. */
const limitStreamedBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw tooLarge();
  },
});

/**
 * A body with a Content-Length is judged by it (the HTTP parser holds the body to it), which
 * keeps the ping path off the streaming reader: on a heartbeat that is a sixth of the CPU.
 */
const limitBody: MiddlewareHandler = async (c, next) => {
  const length = c.req.header('Content-Length');
  if (length === undefined) return limitStreamedBody(c, next);
  if (!/^\d+$/.test(length) || Number(length) > MAX_BODY_BYTES) throw tooLarge();
  await next();
};

export function userRoutes({ db, keys, pings }: RouteDeps) {
  const userKey = requireUserKey(keys);
  return new Hono()
    .post('/ping', userKey, limitBody, async (c) => {
      const ping = parsePing(await readJson(c));
      return c.json({ data: await pings.record(ping) });
    })
    .all('/ping', userKey, methodNotAllowed('POST'))
    .get('/list/:status', userKey, async (c) => {
      const filter = parseListFilter(c.req.param('status'));
      return c.json({ data: await listUsers(db, filter) });
    })
    .all('/list/:status', userKey, methodNotAllowed('GET, HEAD'))
    .get('/count', userKey, async (c) => c.json({ data: await countUsers(db) }))
    .all('/count', userKey, methodNotAllowed('GET, HEAD'));
}

/**
 * The body is read as JSON whatever its Content-Type: clients written from the seed's document
 * (curl -d, for one) do not always send application/json.
 */
async function readJson(c: Context): Promise<unknown> {
  try {
    // JSON between systems is UTF-8 (RFC 8259): bytes that are not are refused, not replaced.
    return JSON.parse(UTF8.decode(await c.req.arrayBuffer()));
  } catch {
    throw new AppError('invalid_json', 400, 'the body must be valid JSON, in UTF-8');
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The OpenAPI description of the routes above, from the schemas they validate with. */
export const userRouteDocs = [
  createRoute({
    method: 'post',
    path: '/users/ping',
    tags: ['presence'],
    summary: 'Record a ping',
    description:
      'Records that a user is available or busy; answers the counts that include this ping, once it is stored. The body is read as JSON whatever its Content-Type.',
    security: KEY_SECURITY,
    request: { body: { required: true, content: { 'application/json': { schema: pingSchema } } } },
    responses: {
      200: json('Stored; the counts that include it', dataOf(countsSchema)),
      ...errorResponses(400, 401, 413, 503),
    },
  }),
  createRoute({
    method: 'get',
    path: '/users/list/{status}',
    tags: ['presence'],
    summary: 'List users',
    description: 'Users with this status (or all), ordered by id.',
    security: KEY_SECURITY,
    request: { params: z.object({ status: listFilterSchema }) },
    responses: {
      200: json('The users', dataOf(z.array(userPresenceSchema))),
      ...errorResponses(400, 401, 503),
    },
  }),
  createRoute({
    method: 'get',
    path: '/users/count',
    tags: ['presence'],
    summary: 'Count users by status',
    security: KEY_SECURITY,
    responses: { 200: json('The counts', dataOf(countsSchema)), ...errorResponses(401, 503) },
  }),
];
