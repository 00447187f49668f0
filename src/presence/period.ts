import { type Kysely, sql } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/schema.js';
import { AppError } from '../errors.js';

// The `from` and `to` of history and report routes. Bounds are ISO 8601: a date-time with an
// offset (`2026-11-26T10:00:00Z`, `...+01:00`), or a date, meaning midnight in REPORT_TIMEZONE.
// PostgreSQL turns them into instants (it owns the report zone, and keeps microseconds, which
// JavaScript dates would drop); here they are only checked to be ones it can read.

const DATE_TIME =
  /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(:(\d{2})(\.\d{1,6})?)?(Z|[+-](\d{2}):?(\d{2}))$/i;
const BOUND_RULE =
  'must be an ISO 8601 date (2026-11-26) or date-time with an offset (2026-11-26T10:00:00Z)';

/** A real calendar date, YYYY-MM-DD, in a year PostgreSQL has (there is no year 0). */
export function isCalendarDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || text.startsWith('0000')) return false;
  const date = new Date(`${text}T00:00:00Z`);
  // Date would take 2026-02-30 as March 2nd: the day must survive the trip.
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(text);
}

function isBound(text: string): boolean {
  if (isCalendarDate(text)) return true;
  const match = DATE_TIME.exec(text);
  if (!match) return false;
  const [, day, hours, minutes, , seconds, , , offsetHours, offsetMinutes] = match;
  return (
    isCalendarDate(day ?? '') &&
    Number(hours) < 24 &&
    Number(minutes) < 60 &&
    Number(seconds ?? 0) < 60 &&
    // PostgreSQL takes offsets up to ±15:59.
    Number(offsetHours ?? 0) <= 15 &&
    Number(offsetMinutes ?? 0) < 60
  );
}

/** `from` or `to` as a query parameter: documented, and checked, by this schema. */
export const boundSchema = z
  .string()
  .refine(isBound, BOUND_RULE)
  .meta({
    description:
      'ISO 8601: a date-time with Z or an offset, or a date (midnight in REPORT_TIMEZONE)',
    examples: ['2026-11-26T10:00:00Z', '2026-11-26'],
  });

/** `limit`: how many rows a page holds, from 1 to `max`. */
export const limitSchema = (max: number, fallback: number) =>
  z
    .string()
    .regex(/^\d{1,6}$/)
    .refine((text) => Number(text) >= 1 && Number(text) <= max)
    .meta({ description: `Rows per page, 1 to ${max} (default ${fallback})` });

export const cursorSchema = z
  .string()
  .meta({ description: 'The `next` value of the previous page' });

/** Instants as PostgreSQL writes them (microseconds kept), passed back to it as they are. */
export interface Period {
  from: string;
  to: string;
}

export interface PeriodRules {
  /**
   * Where a period starts when `from` is not given: so many hours before `to`, or at midnight
   * (REPORT_TIMEZONE) so many days before the day `to` falls in, for reports of whole days.
   */
  defaultFrom: { hoursBefore: number } | { daysBefore: number };
  /** In calendar days of the report zone, so that a month with a clock change still fits. */
  maxDays: number;
}

/** Reads `from` and `to` (either may be absent), refusing bad, reversed and oversized ones. */
export async function resolvePeriod(
  db: Kysely<Database>,
  query: { from?: string | undefined; to?: string | undefined },
  rules: PeriodRules,
): Promise<Period> {
  for (const name of ['from', 'to'] as const) {
    const text = query[name];
    if (text !== undefined && !boundSchema.safeParse(text).success) {
      throw new AppError('invalid_period', 400, `${name} ${BOUND_RULE}`);
    }
  }
  const zone = sql`reporting.report_zone()`;
  const fallback =
    'hoursBefore' in rules.defaultFrom
      ? sql`t.to - make_interval(hours => ${rules.defaultFrom.hoursBefore})`
      : sql`(((t.to - interval '1 microsecond') at time zone ${zone})::date
              - ${rules.defaultFrom.daysBefore}::integer)::timestamp at time zone ${zone}`;
  const { rows } = await sql<Period & { reversed: boolean; oversized: boolean }>`
    select p.from::text as "from", p.to::text as "to",
           p.from >= p.to as reversed,
           (p.from at time zone ${zone}) + make_interval(days => ${rules.maxDays})
             < (p.to at time zone ${zone}) as oversized
    from (select coalesce(${toInstant(query.to)}, now()) as "to") t
    cross join lateral (select coalesce(${toInstant(query.from)}, ${fallback}) as "from", t.to) p
  `.execute(db);
  const row = rows[0];
  if (!row) throw new Error('resolving a period returned no row');
  if (row.reversed) throw new AppError('invalid_period', 400, 'from must be before to');
  if (row.oversized) {
    throw new AppError('invalid_period', 400, `the period must be at most ${rules.maxDays} days`);
  }
  return { from: row.from, to: row.to };
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

/** Reads `limit`, `fallback` when absent. */
export function parseLimit(text: string | undefined, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  if (limitSchema(max, fallback).safeParse(text).success) return Number(text);
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
