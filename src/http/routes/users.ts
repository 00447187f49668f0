import { createRoute } from '@hono/zod-openapi';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { requireUserKey } from '../../edge/auth.js';
import { AppError } from '../../errors.js';
import { listJsonChunks, readListPage, readStatuses } from '../../presence/lists.js';
import { cursorSchema, decodeCursor, encodeCursor, parseLimit } from '../../presence/period.js';
import { countUsers } from '../../presence/repository.js';
import {
  type ListFilter,
  listFilterSchema,
  MAX_BULK_PINGS,
  parseListFilter,
  parsePing,
  parsePings,
  parsePrefix,
  parseUserIds,
  pingSchema,
  pingsSchema,
  prefixText,
  userIdsSchema,
} from '../../presence/validation.js';

import { limitBody, MAX_BODY_BYTES, MAX_BULK_BODY_BYTES, readJson, sizeText } from '../body.js';
import { methodNotAllowed } from '../errors.js';
import { streamDataArray } from '../json-stream.js';
import { requestLogger } from '../request-context.js';
import {
  bodyTooLarge,
  countsSchema,
  dataOf,
  errorResponses,
  json,
  KEY_SECURITY,
  pageOf,
  userPresenceSchema,
} from '../schemas.js';
import type { RouteDeps } from './deps.js';
import { nextPageLink } from './paging.js';

/** Users a bulk read may name. */
export const MAX_BULK_USERS = 1_000;
const LIST_PAGE_MAX = 10_000;

/**
 * A page ends after this id. Checked against the table's own rule (1 to 128 characters), not
 * the stricter rule of new ids, so that paging never stops at a user stored before it.
 */
const listCursor = z.strictObject({
  after: z.string().refine((id) => {
    const characters = [...id].length;
    return characters >= 1 && characters <= 128;
  }),
});

export function userRoutes(deps: RouteDeps) {
  const { db, keys, pings } = deps;
  const userKey = requireUserKey(keys);
  return (
    new Hono()
      .post('/ping', userKey, limitBody(MAX_BODY_BYTES), async (c) => {
        const ping = parsePing(await readJson(c));
        return c.json({ data: await pings.record(ping) });
      })
      .all('/ping', userKey, methodNotAllowed('POST'))
      // Validated whole before anything is queued, then written as one group (never split across
      // batches), answered once it has committed.
      .post('/pings', userKey, limitBody(MAX_BULK_BODY_BYTES), async (c) => {
        const group = parsePings(await readJson(c));
        return c.json({ data: await pings.recordMany(group) });
      })
      .all('/pings', userKey, methodNotAllowed('POST'))
      .post('/status', userKey, limitBody(MAX_BULK_BODY_BYTES), async (c) => {
        const ids = parseUserIds(await readJson(c), MAX_BULK_USERS);
        return c.json({ data: await readStatuses(db, ids) });
      })
      .all('/status', userKey, methodNotAllowed('POST'))
      .get('/list/:status', userKey, async (c) => {
        const filter = parseListFilter(c.req.param('status'));
        const { limit, cursor, prefix: prefixQuery } = c.req.query();
        const prefix = prefixQuery === undefined ? undefined : parsePrefix(prefixQuery);
        if (limit === undefined && cursor === undefined) {
          return streamWholeList(c, deps, filter, prefix);
        }
        if (limit === undefined) {
          throw new AppError(
            'invalid_cursor',
            400,
            'cursor goes with limit (that of the first page)',
          );
        }
        const page = await readListPage(db, filter, {
          limit: parseLimit(limit, LIST_PAGE_MAX, LIST_PAGE_MAX),
          after: decodeCursor(cursor, listCursor)?.after,
          prefix,
        });
        const next =
          page.continueAfter === undefined ? null : encodeCursor({ after: page.continueAfter });
        if (next) c.header('Link', nextPageLink(c.req.url, next));
        return c.json({ data: page.users, next });
      })
      .all('/list/:status', userKey, methodNotAllowed('GET, HEAD'))
      .get('/count', userKey, async (c) => c.json({ data: await countUsers(db) }))
      .all('/count', userKey, methodNotAllowed('GET, HEAD'))
  );
}

/** The seed's `{"data": [...]}`, streamed: see streamDataArray and listJsonChunks. */
async function streamWholeList(
  c: Context,
  deps: RouteDeps,
  filter: ListFilter,
  prefix: string | undefined,
) {
  const chunks = listJsonChunks(deps.db, filter, deps.listChunkRows, prefix);
  const body = await streamDataArray(chunks, (error) => {
    requestLogger(c, deps.logger).error(
      { method: c.req.method, path: c.req.path, err: error },
      'list stream failed; the answer was cut short',
    );
  });
  c.header('Content-Type', 'application/json');
  return c.body(body);
}

const listQuery = z.object({
  limit: z
    .string()
    .regex(/^\d{1,6}$/)
    .optional()
    .meta({
      description: `Page the list: users per page, 1 to ${LIST_PAGE_MAX}. Absent: the whole list`,
    }),
  cursor: cursorSchema.optional(),
  prefix: prefixText.optional(),
});

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
    method: 'post',
    path: '/users/pings',
    tags: ['presence'],
    summary: 'Record many pings',
    description: `Records 1 to ${MAX_BULK_PINGS} pings, each as POST /users/ping's body, in their order (the last ping of a user wins), through the same group commit as single pings; answers the counts that include them all, once all are stored. All or nothing: a bad body is invalid_body, and one bad ping refuses the whole request with its own code (invalid_id, invalid_status, invalid_body), the message naming the first one's index (pings[3]: ...); nothing is stored then. The body is at most ${sizeText(MAX_BULK_BODY_BYTES)}.`,
    security: KEY_SECURITY,
    request: { body: { required: true, content: { 'application/json': { schema: pingsSchema } } } },
    responses: {
      200: json('All stored; the counts that include them', dataOf(countsSchema)),
      ...errorResponses(400, 401, 503),
      ...bodyTooLarge(sizeText(MAX_BULK_BODY_BYTES)),
    },
  }),
  createRoute({
    method: 'post',
    path: '/users/status',
    tags: ['presence'],
    summary: 'Statuses of many users',
    description: `The users among those named (1 to ${MAX_BULK_USERS} ids) that the service knows, each once, ordered by id as in the list; unknown ones are left out. A bad body is invalid_body; a bad id is invalid_id, its message naming the first one's index (users[3]: ...). The body is at most ${sizeText(MAX_BULK_BODY_BYTES)}.`,
    security: KEY_SECURITY,
    request: {
      body: {
        required: true,
        content: { 'application/json': { schema: userIdsSchema(MAX_BULK_USERS) } },
      },
    },
    responses: {
      200: json('The known users among them', dataOf(z.array(userPresenceSchema))),
      ...errorResponses(400, 401, 503),
      ...bodyTooLarge(sizeText(MAX_BULK_BODY_BYTES)),
    },
  }),
  createRoute({
    method: 'get',
    path: '/users/list/{status}',
    tags: ['presence'],
    summary: 'List users',
    description:
      'Users with this status (or all), ordered by id. Without limit, the whole list, streamed (a failure midway cuts the transfer short rather than ending the JSON). With limit, a page and next, the cursor of the following page (null on the last), also as a Link header; a cursor needs a limit. With prefix, only the users whose id starts with it (a range of the primary key: a search as cheap as a page).',
    security: KEY_SECURITY,
    request: { params: z.object({ status: listFilterSchema }), query: listQuery },
    responses: {
      200: json(
        'The users: the whole list, or a page with limit',
        z.union([dataOf(z.array(userPresenceSchema)), pageOf(userPresenceSchema)]),
      ),
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
