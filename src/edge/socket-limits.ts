import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';
import { clientAddress } from './rate-limit.js';

/** The refusal of a socket over LIMIT_SOCKETS_PER_ADDRESS, for either transport. */
export const tooManySockets = (limit: number) =>
  new AppError('too_many_sockets', 429, `at most ${limit} sockets may be open from one address`);

export type SocketCounter = ReturnType<typeof createSocketCounter>;

/**
 * Open sockets per client address (LIMIT_SOCKETS_PER_ADDRESS; 0: no limit). An upgrade over the
 * limit is refused with 429 before it happens.
 */
export function createSocketCounter(limit: number) {
  const open = new Map<string, number>();
  const allows = (address: string) => limit <= 0 || (open.get(address) ?? 0) < limit;
  const check: MiddlewareHandler = async (c, next) => {
    if (!allows(clientAddress(c))) throw tooManySockets(limit);
    await next();
  };
  return {
    /** Whether one more socket may open from `address`. */
    allows,
    check,
    opened(address: string) {
      open.set(address, (open.get(address) ?? 0) + 1);
    },
    closed(address: string) {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    },
    /** Addresses with a socket open: one with none is forgotten, so clients come and go freely. */
    get addresses() {
      return open.size;
    },
  };
}

export type FrameVerdict = 'take' | 'refuse' | 'close';

/**
 * Frames one socket may send a second (LIMIT_FRAMES_PER_SECOND; 0: no limit), counted per
 * second. Over it, frames are refused with an error frame and not read further; a socket that
 * keeps sending at twice the limit is closed.
 */
export function createFrameRate(perSecond: number): () => FrameVerdict {
  let windowStart = 0;
  let frames = 0;
  return () => {
    if (perSecond <= 0) return 'take';
    const now = Date.now();
    if (now - windowStart >= 1_000) {
      windowStart = now;
      frames = 0;
    }
    frames += 1;
    if (frames <= perSecond) return 'take';
    return frames > 2 * perSecond ? 'close' : 'refuse';
  };
}
