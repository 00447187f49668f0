import { createRoute } from '@hono/zod-openapi';
import { Hono } from 'hono';
import { z } from 'zod';
import { requireUserKey } from '../../edge/auth.js';
import { AppError } from '../../errors.js';
import { type DailyActivity, readActivity, readOnlineHours } from '../../presence/history.js';
import {
  boundSchema,
  cursorSchema,
  decodeCursor,
  encodeCursor,
  isCalendarDate,
  limitSchema,
  parseLimit,
  resolvePeriod,
} from '../../presence/period.js';
import { isUserId, parseUserId, userIdText } from '../../presence/validation.js';
import { toCsv } from '../csv.js';
import { methodNotAllowed } from '../errors.js';
import {
  dailyActivitySchema,
  dataOf,
  errorResponses,
  json,
  KEY_SECURITY,
  onlineHourSchema,
  pageOf,
  reportUnavailable,
} from '../schemas.js';
import type { RouteDeps } from './deps.js';
import { nextPageLink } from './paging.js';
import { reportDbFor } from './report-source.js';

// Whole days by default: today and the six before, in REPORT_TIMEZONE.
const ACTIVITY_RULES = { defaultFrom: { daysBefore: 6 }, maxDays: 31 };
const ACTIVITY_PAGE = { max: 10_000, fallback: 1_000 };
const activityCursor = z.object({
  day: z.string().refine(isCalendarDate),
  user: z.string().refine(isUserId),
});
// The last 24 hours by default; at most 31 days, 744 hours: one answer, no pages.
const ONLINE_RULES = { defaultFrom: { hoursBefore: 24 }, maxDays: 31 };
const CSV_COLUMNS: (keyof DailyActivity)[] = ['user', 'day', 'available', 'busy', 'away'];

/**
 * `/reports/activity`: seconds per status per user and day, as JSON or CSV; `/reports/online`:
 * online users per hour. Both on the report pool (or the replica), under the report gate.
 */
export function reportRoutes(deps: RouteDeps) {
  const { reportGate, keys } = deps;
  const userKey = requireUserKey(keys);
  return new Hono()
    .get('/activity', userKey, reportGate.guard, async (c) => {
      const query = c.req.query();
      const db = await reportDbFor(c, deps);
      const period = await resolvePeriod(db, query, ACTIVITY_RULES);
      const user = query.user === undefined ? undefined : parseUserId(query.user);
      const limit = parseLimit(query.limit, ACTIVITY_PAGE.max, ACTIVITY_PAGE.fallback);
      const after = decodeCursor(query.cursor, activityCursor);
      const page = await readActivity(db, period, { user, limit, after });
      const next = page.continueAfter ? encodeCursor(page.continueAfter) : null;
      if (next) c.header('Link', nextPageLink(c.req.url, next));
      if (wantsCsv(c.req.header('Accept'), query.format)) {
        c.header('Content-Type', 'text/csv; charset=utf-8');
        return c.body(toCsv(CSV_COLUMNS, page.rows));
      }
      return c.json({ data: page.rows, next });
    })
    .all('/activity', userKey, methodNotAllowed('GET, HEAD'))
    .get('/online', userKey, reportGate.guard, async (c) => {
      const db = await reportDbFor(c, deps);
      const period = await resolvePeriod(db, c.req.query(), ONLINE_RULES);
      return c.json({ data: await readOnlineHours(db, period) });
    })
    .all('/online', userKey, methodNotAllowed('GET, HEAD'));
}

/** CSV when asked for by `Accept: text/csv` (not with q=0) or `?format=csv` (for browsers). */
function wantsCsv(accept: string | undefined, format: string | undefined): boolean {
  if (format !== undefined) {
    if (!formatSchema.safeParse(format).success) {
      throw new AppError('invalid_format', 400, 'format must be csv or json');
    }
    return format === 'csv';
  }
  return (
    accept?.split(',').some((range) => {
      const [type, ...params] = range.split(';').map((part) => part.trim().toLowerCase());
      const refused = params.some((param) => /^q=0(\.0{0,3})?$/.test(param));
      return type === 'text/csv' && !refused;
    }) ?? false
  );
}

const formatSchema = z
  .enum(['json', 'csv'])
  .meta({ description: 'csv: the same rows as CSV (also chosen by Accept: text/csv)' });

export const reportRouteDocs = [
  createRoute({
    method: 'get',
    path: '/reports/activity',
    tags: ['history'],
    summary: 'Seconds per status per user and day',
    description:
      'Days start at midnight in REPORT_TIMEZONE; only time inside [from, to) counts. By default today and the six days before; at most 31 days. Ordered by day, then user.',
    security: KEY_SECURITY,
    request: {
      query: z.object({
        from: boundSchema.optional(),
        to: boundSchema.optional(),
        user: userIdText.optional(),
        limit: limitSchema(ACTIVITY_PAGE.max, ACTIVITY_PAGE.fallback).optional(),
        cursor: cursorSchema.optional(),
        format: formatSchema.optional(),
      }),
    },
    responses: {
      200: {
        description: 'A page of daily activity',
        content: {
          'application/json': { schema: pageOf(dailyActivitySchema) },
          'text/csv': { schema: z.string().meta({ description: 'user,day,available,busy,away' }) },
        },
      },
      ...errorResponses(400, 401),
      ...reportUnavailable,
    },
  }),
  createRoute({
    method: 'get',
    path: '/reports/online',
    tags: ['history'],
    summary: 'Online users per hour',
    description:
      'For each hour of [from, to) up to now (hours of REPORT_TIMEZONE): the users available or busy at some moment of it, and the most at one moment (reporting.concurrency). By default the last 24 hours; at most 31 days.',
    security: KEY_SECURITY,
    request: {
      query: z.object({ from: boundSchema.optional(), to: boundSchema.optional() }),
    },
    responses: {
      200: json('One row per hour, oldest first', dataOf(z.array(onlineHourSchema))),
      ...errorResponses(400, 401),
      ...reportUnavailable,
    },
  }),
];
