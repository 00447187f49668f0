import { createRoute } from '@hono/zod-openapi';
import { Hono } from 'hono';
import { z } from 'zod';
import { requireUserKey } from '../../edge/auth.js';
import { AppError } from '../../errors.js';
import { isKnownUser, readUserHistory } from '../../presence/history.js';
import {
  boundSchema,
  cursorSchema,
  decodeCursor,
  encodeCursor,
  limitSchema,
  parseLimit,
  resolvePeriod,
} from '../../presence/period.js';
import { readUserState } from '../../presence/sessions.js';
import { parseUserId, userIdText } from '../../presence/validation.js';
import { methodNotAllowed } from '../errors.js';
import {
  dataOf,
  errorResponses,
  json,
  KEY_SECURITY,
  pageOf,
  reportUnavailable,
  statusIntervalSchema,
  userStateSchema,
} from '../schemas.js';
import type { RouteDeps } from './deps.js';
import { nextPageLink } from './paging.js';
import { reportDbFor } from './report-source.js';

const HISTORY_RULES = { defaultFrom: { hoursBefore: 24 }, maxDays: 31 };
const HISTORY_PAGE = { max: 1_000, fallback: 100 };
const historyCursor = z.object({ after: z.number().int().nonnegative() });

/**
 * `/users/{id}/status` and `/users/{id}/history`: one user, now and over time. History (up to
 * 31 days of the log) runs on the report pool, under the report gate; status on the ping pool.
 */
export function userHistoryRoutes(deps: RouteDeps) {
  const { db, reportGate, keys } = deps;
  const userKey = requireUserKey(keys);
  return new Hono()
    .get('/:id/status', userKey, async (c) => {
      const user = parseUserId(c.req.param('id'));
      const status = await readUserState(db, user);
      if (!status) throw unknownUser(user);
      return c.json({ data: status });
    })
    .all('/:id/status', userKey, methodNotAllowed('GET, HEAD'))
    .get('/:id/history', userKey, reportGate.guard, async (c) => {
      const user = parseUserId(c.req.param('id'));
      const query = c.req.query();
      const reportDb = await reportDbFor(c, deps);
      const period = await resolvePeriod(reportDb, query, HISTORY_RULES);
      const limit = parseLimit(query.limit, HISTORY_PAGE.max, HISTORY_PAGE.fallback);
      const after = decodeCursor(query.cursor, historyCursor)?.after ?? 0;
      const page = await readUserHistory(reportDb, user, period, { limit, after });
      if (page.intervals.length === 0 && !(await isKnownUser(reportDb, user))) {
        throw unknownUser(user);
      }
      const next =
        page.continueAfter === undefined ? null : encodeCursor({ after: page.continueAfter });
      if (next) c.header('Link', nextPageLink(c.req.url, next));
      return c.json({ data: page.intervals, next });
    })
    .all('/:id/history', userKey, methodNotAllowed('GET, HEAD'));
}

const unknownUser = (user: string) =>
  new AppError('user_not_found', 404, `no user ${JSON.stringify(user)}`);

const userParams = z.object({ id: userIdText });

export const userHistoryRouteDocs = [
  createRoute({
    method: 'get',
    path: '/users/{id}/status',
    tags: ['history'],
    summary: "One user's status now",
    description:
      'The effective status (merged from the live sessions, with the override), the live sessions, and the override and message while set.',
    security: KEY_SECURITY,
    request: { params: userParams },
    responses: {
      200: json('The user', dataOf(userStateSchema)),
      ...errorResponses(400, 401, 404, 503),
    },
  }),
  createRoute({
    method: 'get',
    path: '/users/{id}/history',
    tags: ['history'],
    summary: "A user's status intervals over a period",
    description:
      'Intervals overlapping [from, to), oldest first. By default the last 24 hours; at most 31 days.',
    security: KEY_SECURITY,
    request: {
      params: userParams,
      query: z.object({
        from: boundSchema.optional(),
        to: boundSchema.optional(),
        limit: limitSchema(HISTORY_PAGE.max, HISTORY_PAGE.fallback).optional(),
        cursor: cursorSchema.optional(),
      }),
    },
    responses: {
      200: json('A page of intervals', pageOf(statusIntervalSchema)),
      ...errorResponses(400, 401, 404),
      ...reportUnavailable,
    },
  }),
];
