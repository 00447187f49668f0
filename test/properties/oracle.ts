// What the README promises, written down independently of src/: the verdict on a ping, the
// rules for ids, and the error codes an answer may carry. The properties compare the service's
// answers with these.

export type PingStatus = 'available' | 'busy';

export type PingVerdict =
  | { ok: true; id: string; status: PingStatus }
  | { ok: false; code: 'invalid_body' | 'invalid_id' | 'invalid_status' };

/** README, Errors and WebSocket: every code a client may meet. */
export const DOCUMENTED_CODES = new Set([
  'invalid_json',
  'invalid_body',
  'invalid_id',
  'invalid_status',
  'invalid_period',
  'invalid_limit',
  'invalid_cursor',
  'invalid_format',
  'unauthorized',
  'not_found',
  'user_not_found',
  'method_not_allowed',
  'payload_too_large',
  'database_unavailable',
  'internal',
  // Flood limits (429).
  'rate_limited',
  'too_many_sockets',
  // The WebSocket section's.
  'invalid_frame',
  'unknown_event',
  'too_many_frames',
  'invalid_subscription',
  // Reports and history (503).
  'reports_busy',
  'report_too_expensive',
  // GET /ws without an upgrade (426), an upgrade elsewhere (400), a foreign origin (403).
  'upgrade_required',
  'upgrade_not_supported',
  'origin_not_allowed',
]);

export const MAX_BODY_BYTES = 16 * 1024;
export const MAX_FRAME_BYTES = 1024 * 1024;

// Characters the README refuses in ids: control (Cc), format (Cf), line and paragraph
// separators (Zl, Zp).
const REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
// What renders as nothing: Unicode's White_Space, and the fillers the README names.
const BLANKS = new Set(['\u115f', '\u1160', '\u3164', '\uffa0', '\u2800']);
const isBlank = (character: string) =>
  /^\p{White_Space}$/u.test(character) || BLANKS.has(character);

/**
 * "1 to 128 characters; no control, format or separator characters; not only whitespace":
 * characters are code points, and a lone surrogate is not a character at all (refused too).
 */
export function isValidId(id: string): boolean {
  const characters = [...id];
  return (
    characters.length >= 1 &&
    characters.length <= 128 &&
    id.isWellFormed() &&
    !REFUSED.test(id) &&
    !characters.every(isBlank)
  );
}

/**
 * `id` as the service must read it: a string as it is, an exact integer (within ±2^53 - 1) as
 * its decimal string; anything else is not an id.
 */
export function normaliseId(id: unknown): string | undefined {
  if (typeof id === 'string') return isValidId(id) ? id : undefined;
  if (typeof id === 'number' && Number.isSafeInteger(id)) {
    const text = String(id);
    return isValidId(text) ? text : undefined;
  }
  return undefined;
}

/** The verdict on a ping's parsed JSON value (a body, or a `user-ping` frame's `data`). */
export function judgePing(value: unknown): PingVerdict {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'invalid_body' };
  }
  const fields = value as { id?: unknown; status?: unknown };
  const id = normaliseId(fields.id);
  const status =
    fields.status === 'available' || fields.status === 'busy' ? fields.status : undefined;
  if (id !== undefined && status !== undefined) return { ok: true, id, status };
  if (id === undefined && status === undefined) return { ok: false, code: 'invalid_body' };
  return { ok: false, code: id === undefined ? 'invalid_id' : 'invalid_status' };
}

/** JSON.parse, or undefined with `ok: false` for text that is not JSON. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** True when `bytes` are valid UTF-8 (what a JSON text exchanged between systems must be). */
export function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
