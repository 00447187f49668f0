import { z } from 'zod';
import { AppError } from '../errors.js';

// What a client may set beside its pings: an override (do-not-disturb or appear-away) and a
// status message, each until an optional expiry. Validated here for every transport.

/** The furthest an expiry may be: a year ahead. */
const MAX_AHEAD_MS = 366 * 24 * 3600 * 1000;

const EXPIRES_RULE =
  'expires must be an ISO 8601 date-time with Z or an offset, in the future and at most a year ahead, or null';

const expires = z
  .union([z.iso.datetime({ offset: true }), z.null()], { error: EXPIRES_RULE })
  .optional()
  .meta({ description: 'When it ends (ISO 8601, at most a year ahead); null or absent: never' });

export const overrideSchema = z.object(
  {
    status: z.enum(['busy', 'away'], {
      error: 'status must be "busy" (do not disturb) or "away" (appear away)',
    }),
    expires,
  },
  { error: 'the body must be a JSON object {"status": "busy" | "away", "expires": ...}' },
);

const MESSAGE_RULE = 'text must be a string of 1 to 100 characters';

export const messageSchema = z.object(
  {
    text: z
      .string({ error: MESSAGE_RULE })
      .refine((text) => {
        const characters = [...text].length;
        return characters >= 1 && characters <= 100;
      }, MESSAGE_RULE)
      .refine((text) => text.isWellFormed(), 'text must be valid Unicode'),
    expires,
  },
  { error: 'the body must be a JSON object {"text": "...", "expires": ...}' },
);

export interface Override {
  status: 'busy' | 'away';
  expires: Date | null;
}

export interface Message {
  text: string;
  expires: Date | null;
}

/** An expiry in the past or more than a year ahead is refused: it could only be a mistake. */
function parseExpires(value: string | null | undefined, now = Date.now()): Date | null {
  if (value === null || value === undefined) return null;
  const at = new Date(value);
  if (Number.isNaN(at.getTime()) || at.getTime() <= now || at.getTime() > now + MAX_AHEAD_MS) {
    throw new AppError('invalid_expires', 400, EXPIRES_RULE);
  }
  return at;
}

function refuse(error: z.ZodError, code: string): never {
  const fields = new Set(error.issues.map((issue) => String(issue.path[0])));
  const which = fields.size === 1 && fields.has('expires') ? 'invalid_expires' : code;
  throw new AppError(which, 400, [...new Set(error.issues.map((i) => i.message))].join('; '));
}

export function parseOverride(input: unknown): Override {
  const parsed = overrideSchema.safeParse(input);
  if (!parsed.success) refuse(parsed.error, 'invalid_override');
  return { status: parsed.data.status, expires: parseExpires(parsed.data.expires) };
}

export function parseMessage(input: unknown): Message {
  const parsed = messageSchema.safeParse(input);
  if (!parsed.success) refuse(parsed.error, 'invalid_message');
  return { text: parsed.data.text, expires: parseExpires(parsed.data.expires) };
}
