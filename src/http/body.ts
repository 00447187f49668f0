import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { MAX_BULK_MESSAGE_BYTES } from '../edge/sizes.js';
import { AppError } from '../errors.js';

// Request bodies: at most so many bytes, read as JSON in UTF-8.

/** A ping's body (and any body of one thing). */
export const MAX_BODY_BYTES = 16 * 1024;
/**
 * A body naming up to 1,000 users, or carrying 1,000 pings: 1,000 ids of 128 characters are at
 * most 512 KB in UTF-8 (4 bytes a character at worst), with their quotes and commas; a ping adds
 * about 30 bytes of `"status": "available"`. 1 MiB leaves room for whitespace. Socket frames
 * have the same bound, for `user-pings` (ws/endpoint.ts).
 */
export const MAX_BULK_BODY_BYTES = MAX_BULK_MESSAGE_BYTES;

/** How a limit is written in messages and in the OpenAPI document. */
export const sizeText = (bytes: number) =>
  bytes % (1024 * 1024) === 0 ? `${bytes / 1024 / 1024} MiB` : `${bytes / 1024} KiB`;

/** Refuses (413) a body over `maxBytes`, before it is read further. */
export function limitBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = () =>
    new AppError('payload_too_large', 413, `the body must be at most ${maxBytes} bytes`);
  // For bodies without a Content-Length (chunked): counted as they stream in.
  const limitStreamed = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  // A body with a Content-Length is judged by it (the HTTP parser holds the body to it), which
  // keeps the ping path off the streaming reader: on a heartbeat that is a sixth of the CPU.
  return async (c, next) => {
    const length = c.req.header('Content-Length');
    if (length === undefined) return limitStreamed(c, next);
    if (!/^\d+$/.test(length) || Number(length) > maxBytes) throw tooLarge();
    await next();
  };
}

/**
 * The body is read as JSON whatever its Content-Type: clients written from the seed's document
 * (curl -d, for one) do not always send application/json.
 */
export async function readJson(c: Context): Promise<unknown> {
  try {
    // JSON between systems is UTF-8 (RFC 8259): bytes that are not are refused, not replaced.
    return JSON.parse(UTF8.decode(await c.req.arrayBuffer()));
  } catch {
    throw new AppError('invalid_json', 400, 'the body must be valid JSON, in UTF-8');
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
