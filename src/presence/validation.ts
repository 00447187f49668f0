import { z } from 'zod';
import type { PingStatus } from '../db/schema.js';
import { AppError } from '../errors.js';

export interface Ping {
  id: string;
  status: PingStatus;
  /** The session (device) pinging; absent: the user's default session. */
  session?: string | undefined;
  /** Seconds after which this session lapses without a new ping; absent: the away timeout. */
  timeout?: number | undefined;
}

const ID_RULE = 'id must be a string of 1 to 128 characters or an integer';
const UNSAFE_ID_RULE =
  'integer ids must be between -9007199254740991 and 9007199254740991; send larger ones as strings';

// Characters that make one id pass for another in lists, logs, the dashboard and CSV: control
// characters (Cc; NUL cannot even be stored), format characters (Cf: soft hyphen, zero-width
// characters, direction overrides, the BOM, tags) and the line and paragraph separators.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
// Characters that render as nothing: whitespace, and the Hangul and Braille fillers.
const BLANK = /^[\s\u115f\u1160\u3164\uffa0\u2800]*$/u;

const INVISIBLE_RULE =
  'id must not contain control, format (such as zero-width or direction) or separator characters';

/**
 * An id as stored: 1 to 128 characters of valid Unicode that a person can read and tell apart:
 * none invisible, and not only blanks.
 */
const storedUserId = z
  .string()
  .refine((id) => {
    const characters = [...id].length;
    return characters >= 1 && characters <= 128;
  }, ID_RULE)
  .refine((id) => id.isWellFormed(), 'id must be valid Unicode (no lone surrogates)')
  .refine((id) => !INVISIBLE.test(id), INVISIBLE_RULE)
  .refine((id) => !BLANK.test(id), 'id must not be only whitespace');

/**
 * `1` and `"1"` are the same user: integers become their decimal string. Integers beyond 2^53
 * are refused, since JSON parsing has already rounded them to another number.
 */
export const userId = z
  .union(
    [
      z.string(),
      z.number().int({
        error: ({ input }) => (Number.isInteger(input) ? UNSAFE_ID_RULE : ID_RULE),
      }),
    ],
    { error: ({ input }) => (input === undefined ? 'id is required' : ID_RULE) },
  )
  .transform(String)
  .pipe(storedUserId)
  .meta({
    description:
      'The user: a string of 1 to 128 characters, or an integer (1 and "1" are the same user)',
    examples: ['alice', 42],
  });

/** `{"users": [id, ...]}`: ids named in bulk, each a ping's id. Documents what parseUserIds reads. */
export const userIdsSchema = (max: number) =>
  z.object({ users: z.array(userId).min(1).max(max) }).meta({
    description: `1 to ${max} ids, each as a ping's id`,
  });

const USER_IDS_SHAPE = 'the body must be a JSON object {"users": [id, ...]}';

/**
 * Reads `{"users": [id, ...]}`. A body of the wrong shape (no array, too few or too many ids)
 * is `invalid_body`; a bad id is `invalid_id` naming the first bad one's index, so that a client
 * can find it among a thousand. Duplicates are kept: asking twice for a user is not an error.
 */
export function parseUserIds(input: unknown, max: number): string[] {
  const isObject = typeof input === 'object' && input !== null && !Array.isArray(input);
  const users: unknown = isObject ? (input as { users?: unknown }).users : undefined;
  if (!Array.isArray(users)) throw new AppError('invalid_body', 400, USER_IDS_SHAPE);
  if (users.length < 1 || users.length > max) {
    const message = `users must hold 1 to ${max} ids, not ${users.length}`;
    throw new AppError('invalid_body', 400, message);
  }
  return users.map((id, index) => {
    const parsed = userId.safeParse(id);
    if (parsed.success) return parsed.data;
    const why = [...new Set(parsed.error.issues.map((issue) => issue.message))].join('; ');
    throw new AppError('invalid_id', 400, `users[${index}]: ${why}`);
  });
}

/** An id taken from a path or a query string. */
export const userIdText = storedUserId.meta({
  description:
    'The user id (URL-encoded), 1 to 128 characters; no control, format or separator characters, not only blanks',
  examples: ['alice', '42'],
});

export const isUserId = (input: string): boolean => userIdText.safeParse(input).success;

/** An id taken from a path or a query: the same rules as in a ping. */
export function parseUserId(input: string): string {
  const parsed = userIdText.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new AppError('invalid_id', 400, parsed.error.issues.map((i) => i.message).join('; '));
}

/** The default session's name in paths (and in a ping, the same as no session). */
export const DEFAULT_SESSION = 'default';

const SESSION_RULE = 'session must be a string of 1 to 128 characters without control characters';

/** A session (device) name: 1 to 128 characters, no control characters. */
export const sessionName = z
  .string({ error: SESSION_RULE })
  .refine((session) => {
    const characters = [...session].length;
    return characters >= 1 && characters <= 128;
  }, SESSION_RULE)
  .refine((session) => session.isWellFormed(), 'session must be valid Unicode')
  .refine((session) => !/\p{Cc}/u.test(session), SESSION_RULE)
  .meta({
    description: `The session (device) pinging, 1 to 128 characters; absent or "${DEFAULT_SESSION}": the default session`,
    examples: ['phone'],
  });

const TIMEOUT_RULE = 'timeout must be a number of seconds from 1 to 86400';

/** A session's own timeout in seconds; fractions allowed. */
const sessionTimeout = z
  .number({ error: TIMEOUT_RULE })
  .min(1, TIMEOUT_RULE)
  .max(86_400, TIMEOUT_RULE)
  .optional()
  .meta({
    description:
      'Seconds (1 to 86400, fractions allowed) after which this session lapses without a new ping; absent: AWAY_TIMEOUT_SECONDS',
  });

/** A session named in a path: `default` is the default session (undefined). */
export function parseSessionName(input: string): string | undefined {
  const parsed = sessionName.safeParse(input);
  if (!parsed.success) throw new AppError('invalid_session', 400, SESSION_RULE);
  return parsed.data === DEFAULT_SESSION ? undefined : parsed.data;
}

const pingStatus = z.enum(['available', 'busy'], {
  error: 'status must be "available" or "busy" (away is derived from time, never set)',
});

export const pingSchema = z.object(
  { id: userId, status: pingStatus, session: sessionName.optional(), timeout: sessionTimeout },
  { error: 'the body must be a JSON object {"id": ..., "status": ...}' },
);

/** The code of a refusal whose issues all concern one field; invalid_body otherwise. */
const FIELD_CODES: Record<string, string> = {
  id: 'invalid_id',
  status: 'invalid_status',
  session: 'invalid_session',
  timeout: 'invalid_timeout',
};

/** Validates a ping from any transport; throws a 400 AppError saying what is wrong. */
export function parsePing(input: unknown): Ping {
  const parsed = pingSchema.safeParse(input);
  if (parsed.success) {
    const { id, status, session, timeout } = parsed.data;
    // `default` names the default session, as in paths: the same session as none.
    const ping: Ping = { id, status };
    if (session !== undefined && session !== DEFAULT_SESSION) ping.session = session;
    if (timeout !== undefined) ping.timeout = timeout;
    return ping;
  }
  throw refusal(parsed.error.issues, FIELD_CODES);
}

function refusal(issues: z.core.$ZodIssue[], codes: Record<string, string>): AppError {
  const fields = new Set(issues.map((issue) => String(issue.path[0])));
  const [only] = fields;
  const code =
    fields.size === 1 && only !== undefined ? (codes[only] ?? 'invalid_body') : 'invalid_body';
  return new AppError(code, 400, [...new Set(issues.map((issue) => issue.message))].join('; '));
}

/** Pings one bulk request (`POST /users/pings`, socket `user-pings`) may carry. */
export const MAX_BULK_PINGS = 1_000;

/** `{"pings": [ping, ...]}`: documents what parsePings reads. */
export const pingsSchema = z
  .object({ pings: z.array(pingSchema).min(1).max(MAX_BULK_PINGS) })
  .meta({
    description: `1 to ${MAX_BULK_PINGS} pings, each as POST /users/ping's body, stored in order`,
  });

const PINGS_SHAPE = 'the body must be a JSON object {"pings": [{"id": ..., "status": ...}, ...]}';

/**
 * Reads `{"pings": [...]}` whole before anything is stored: a bulk request is all or nothing. A
 * body of the wrong shape is `invalid_body`; a bad ping is refused with its own code and the
 * first bad one's index (`pings[3]: ...`), so that a client can find it among a thousand.
 */
export function parsePings(input: unknown): Ping[] {
  const isObject = typeof input === 'object' && input !== null && !Array.isArray(input);
  const pings: unknown = isObject ? (input as { pings?: unknown }).pings : undefined;
  if (!Array.isArray(pings)) throw new AppError('invalid_body', 400, PINGS_SHAPE);
  if (pings.length < 1 || pings.length > MAX_BULK_PINGS) {
    const message = `pings must hold 1 to ${MAX_BULK_PINGS} pings, not ${pings.length}`;
    throw new AppError('invalid_body', 400, message);
  }
  return pings.map((ping, index) => {
    try {
      return parsePing(ping);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      throw new AppError(error.code, 400, `pings[${index}]: ${error.message}`);
    }
  });
}

const PREFIX_RULE =
  'prefix must be 1 to 128 characters of valid Unicode, without control, format or separator characters';

/** `prefix=`: the start of ids, under the same character rules as an id (blanks allowed). */
export const prefixText = z
  .string()
  .refine((text) => {
    const characters = [...text].length;
    return characters >= 1 && characters <= 128 && text.isWellFormed() && !INVISIBLE.test(text);
  }, PREFIX_RULE)
  .meta({ description: 'Only users whose id starts with this (1 to 128 characters)' });

export function parsePrefix(input: string): string {
  if (!prefixText.safeParse(input).success) throw new AppError('invalid_prefix', 400, PREFIX_RULE);
  return input;
}

/**
 * The least string above every string that starts with `prefix`, in code point order (that of
 * UTF-8 bytes, the "C" collation of user_id): the prefix with its last character raised by one,
 * after dropping trailing U+10FFFF. Undefined when there is none (a prefix of U+10FFFF only).
 * `user_id >= prefix and user_id < upper` is then exactly "starts with", and a range scan of
 * the primary key.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const characters = [...prefix];
  while (characters.at(-1) === '\u{10FFFF}') characters.pop();
  const last = characters.pop();
  if (last === undefined) return undefined;
  let code = (last.codePointAt(0) as number) + 1;
  // Surrogates are not characters: after U+D7FF comes U+E000.
  if (code >= 0xd800 && code <= 0xdfff) code = 0xe000;
  return characters.join('') + String.fromCodePoint(code);
}

const LIST_FILTERS = ['available', 'busy', 'away', 'all'] as const;
export type ListFilter = (typeof LIST_FILTERS)[number];
export const listFilterSchema = z.enum(LIST_FILTERS).meta({
  description: 'Which users: those with this status, or all',
});

export function parseListFilter(input: string): ListFilter {
  const parsed = listFilterSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new AppError('invalid_status', 400, `status must be one of ${LIST_FILTERS.join(', ')}`);
}
