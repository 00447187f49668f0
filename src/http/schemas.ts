import { z } from 'zod';

// What the REST routes answer, as zod schemas: the OpenAPI document is generated from these and
// from the request schemas the routes validate with (src/presence/validation.ts, period.ts).

export const statusSchema = z.enum(['available', 'busy', 'away']).meta({ id: 'Status' });

export const countsSchema = z
  .object({
    available: z.number().int().nonnegative(),
    busy: z.number().int().nonnegative(),
    away: z.number().int().nonnegative(),
  })
  .meta({ id: 'Counts', description: 'How many users have each status; all three keys always' });

export const userPresenceSchema = z
  .object({
    user: z.string(),
    status: statusSchema,
    time: z
      .number()
      .int()
      .meta({ description: 'Unix time of the last ping of any session, in whole seconds' }),
    message: z
      .string()
      .optional()
      .meta({ description: 'The status message, only while one is set' }),
  })
  .meta({ id: 'UserPresence' });

export const userStateSchema = userPresenceSchema
  .extend({
    sessions: z
      .array(
        z.object({
          session: z.string().meta({ description: '`default` for pings without a session' }),
          status: z.enum(['available', 'busy']),
          time: z.number().int().meta({ description: "Unix time of the session's last ping" }),
        }),
      )
      .optional()
      .meta({
        description:
          "The live sessions, by name; left out for a user who never pinged a named session (their answer is the seed's)",
      }),
    override: z
      .object({ status: z.enum(['busy', 'away']), expires: z.iso.datetime().nullable() })
      .optional()
      .meta({ description: 'Do-not-disturb or appear-away, only while one is set' }),
    message_expires: z.iso
      .datetime()
      .nullable()
      .optional()
      .meta({ description: 'When the message ends (null: never); only with a message' }),
  })
  .meta({ id: 'UserState' });

export const statusIntervalSchema = z
  .object({
    status: statusSchema,
    started: z.iso.datetime(),
    ended: z.iso.datetime().nullable().meta({ description: 'null while the interval lasts' }),
    duration: z.number().meta({ description: 'Seconds (up to now for an open interval)' }),
  })
  .meta({ id: 'StatusInterval' });

export const dailyActivitySchema = z
  .object({
    user: z.string(),
    day: z.iso.date().meta({ description: 'The day, midnight to midnight in REPORT_TIMEZONE' }),
    available: z.number().meta({ description: 'Seconds available that day' }),
    busy: z.number().meta({ description: 'Seconds busy that day' }),
    away: z.number().meta({ description: 'Seconds away that day' }),
  })
  .meta({ id: 'DailyActivity' });

export const onlineHourSchema = z
  .object({
    hour: z.iso.datetime().meta({ description: "The hour's start (hours of REPORT_TIMEZONE)" }),
    online: z.number().int().meta({ description: 'Users available or busy at some moment of it' }),
    peak: z.number().int().meta({ description: 'The most users online at one moment of it' }),
  })
  .meta({ id: 'OnlineHour' });

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().meta({ examples: ['invalid_id'] }),
      message: z.string(),
    }),
  })
  .meta({ id: 'Error' });

/** `{"data": ...}`, the seed's envelope. */
export const dataOf = <T extends z.ZodType>(schema: T) => z.object({ data: schema });

/** A page: `data`, and `next`, the cursor of the next page (null on the last one). */
export const pageOf = <T extends z.ZodType>(schema: T) =>
  z.object({
    data: z.array(schema),
    next: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page' }),
  });

const ERRORS = {
  400: 'Invalid input; nothing was changed',
  401: 'No key, or a key that does not open this route',
  404: 'Not found',
  405: 'The route exists for other methods (see Allow)',
  413: 'The body is over 16 KiB',
  503: 'The database cannot be reached; retry after Retry-After seconds',
} as const;

/** The documented error answers of a route. */
export function errorResponses(...statuses: (keyof typeof ERRORS)[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: ERRORS[status], content: { 'application/json': { schema: errorSchema } } },
    ]),
  );
}

/**
 * The 503 of report and history routes, which have more reasons to give it than the database
 * being away: the error's code says which.
 */
export const reportUnavailable = {
  503: {
    description:
      'Retry after Retry-After seconds. database_unavailable: the database cannot be reached; ' +
      'reports_busy: too many reports are running; report_too_expensive: the report took too ' +
      'long (ask for a shorter period or a smaller page)',
    content: { 'application/json': { schema: errorSchema } },
  },
};

/** The 413 of a route whose body may be larger than a ping's. */
export const bodyTooLarge = (size: string) => ({
  413: {
    description: `The body is over ${size}`,
    content: { 'application/json': { schema: errorSchema } },
  },
});

/** A JSON answer. */
export const json = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { 'application/json': { schema } },
});

/** Routes take the key as `?key=` or as a bearer token. */
export const KEY_SECURITY: Record<string, string[]>[] = [{ bearerKey: [] }, { queryKey: [] }];
