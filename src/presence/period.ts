import { type Kysely, sql } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/schema.js';
import { AppError } from '../errors.js';

// The `from` and `to` of history and report routes. Bounds are ISO 8601: a date-time with an
// offset (`2026-11-26T10:00:00Z`, `...+01:00`), or a date, meaning midnight in REPORT_TIMEZONE.
// Dates are turned into instants by PostgreSQL, which owns the report zone.

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$/i;
const BOUND_RULE =
  'must be an ISO 8601 date (2026-11-26) or date-time with an offset (2026-11-26T10:00:00Z)';

/** A bound as given: checked to be a real calendar date, not yet an instant. */
const bound = z.string().refine((text) => {
  // PostgreSQL has no year 0.
  if (text.startsWith('0000')) return false;
  if (DATE.test(text)) {
    const date = new Date(`${text}T00:00:00Z`);
    return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(text);
  }
  if (!DATE_TIME.test(text)) return false;
  const date = new Date(text);
  // Date accepts 2026-02-30T00:00Z as March 2nd: the calendar part must survive the trip.
  return (
    !Number.isNaN(date.getTime()) &&
    new Date(`${text.slice(0, 10)}T00:00:00Z`).toISOString().startsWith(text.slice(0, 10)) &&
    Number(text.slice(11, 13)) < 24
  );
}, BOUND_RULE);

export interface Period {
  from: Date;
  to: Date;
}

export interface PeriodRules {
  /**
   * Where a period starts when `from` is not given: so long before `to`, or at midnight
   * (REPORT_TIMEZONE) so many days before the day `to` falls in, for reports of whole days.
   */
  defaultFrom: { msBefore: number } | { daysBefore: number };
  maxSpanMs: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
export const days = (n: number) => n * DAY_MS;

/** Reads `from` and `to` (either may be absent), refusing bad, reversed and oversized ones. */
export async function resolvePeriod(
  db: Kysely<Database>,
  query: { from?: string | undefined; to?: string | undefined },
  rules: PeriodRules,
): Promise<Period> {
  for (const name of ['from', 'to'] as const) {
    const text = query[name];
    if (text !== undefined && !bound.safeParse(text).success) {
      throw new AppError('invalid_period', 400, `${name} ${BOUND_RULE}`);
    }
  }
  const fallback =
    'msBefore' in rules.defaultFrom
      ? sql`t.to - make_interval(secs => ${rules.defaultFrom.msBefore / 1000})`
      : sql`(((t.to - interval '1 microsecond') at time zone reporting.report_zone())::date
              - ${rules.defaultFrom.daysBefore}::integer)::timestamp
            at time zone reporting.report_zone()`;
  const { rows } = await sql<Period>`
    select coalesce(${toInstant(query.from)}, ${fallback}) as "from", t.to as "to"
    from (select coalesce(${toInstant(query.to)}, now()) as "to") t
  `.execute(db);
  const period = rows[0];
  if (!period) throw new Error('resolving a period returned no row');
  const span = period.to.getTime() - period.from.getTime();
  if (span <= 0) throw new AppError('invalid_period', 400, 'from must be before to');
  if (span > rules.maxSpanMs) {
    const limit = rules.maxSpanMs / DAY_MS;
    throw new AppError('invalid_period', 400, `the period must be at most ${limit} days long`);
  }
  return period;
}

function toInstant(given: string | undefined) {
  const text = given ?? null;
  return sql`case
    when ${text}::text is null then null
    when ${text}::text ~ '^\\d{4}-\\d{2}-\\d{2}$'
      then ${text}::date::timestamp at time zone reporting.report_zone()
    else ${text}::timestamptz
  end`;
}

/** `limit`: how many rows a page holds. */
export function parseLimit(text: string | undefined, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  const parsed = z.coerce.number().int().min(1).max(max).safeParse(text);
  if (parsed.success && /^\d+$/.test(text)) return parsed.data;
  throw new AppError('invalid_limit', 400, `limit must be a whole number from 1 to ${max}`);
}

/**
 * Cursors are opaque to clients: base64url JSON of where the previous page ended. A cursor that
 * does not decode to what `schema` expects is refused rather than guessed at.
 */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(text: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // Not base64url JSON: refused below like any other bad cursor.
  }
  throw new AppError('invalid_cursor', 400, 'cursor must be the `next` value of a previous page');
}
