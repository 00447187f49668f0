import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { AppError } from '../errors.js';
import { toAppError } from '../http/errors.js';
import type { Logger } from '../logger.js';
import type { PingMetrics } from '../metrics/metrics.js';
import type { PingWriter } from '../presence/ping-writer.js';
import { leaveSession, parseLeave } from '../presence/sessions.js';
import { parsePing } from '../presence/validation.js';
import { parseSubscription } from '../realtime/subscription.js';
import type { Broadcaster } from './broadcaster.js';
import { encodeError, parseClientFrame, showEventName } from './frames.js';
import type { Peer, SocketHub } from './hub.js';
import { createFrameRate } from './limits.js';

/** Closing code for a socket that broke the rules (here: kept flooding). */
const CLOSE_POLICY_VIOLATION = 1008;

/** Pings a socket may have waiting for the database before more are refused. */
export const MAX_PENDING_FRAMES = 64;

export type FrameHandler = (data: string | ArrayBuffer) => void;

/**
 * Handles one socket's frames in the order they came: a `user-ping` then another from the same
 * socket are stored in that order, so the last one sent is the status that stays. Anything the
 * service cannot take is answered with an `error` frame, and the socket stays open.
 */
export function createFrameHandler(deps: {
  db: Kysely<Database>;
  pings: PingWriter;
  hub: SocketHub;
  broadcaster: Broadcaster;
  logger: Logger;
  peer: Peer;
  /** LIMIT_WATCH_USERS. */
  maxWatchUsers: number;
  /** Told the outcome of every frame, as for `POST /users/ping`. */
  metrics?: PingMetrics;
  /** LIMIT_FRAMES_PER_SECOND; 0 or absent: no limit. */
  framesPerSecond?: number;
}): FrameHandler {
  const { pings, hub, broadcaster, logger, peer, metrics } = deps;
  const rate = createFrameRate(deps.framesPerSecond ?? 0);
  let queue = Promise.resolve();
  let pending = 0;

  const refuse = (error: unknown) => {
    const appError = toAppError(error);
    metrics?.pingHandled('socket', appError.status < 500 ? 'refused' : 'failed');
    if (appError.status >= 500 && appError.status !== 503) {
      logger.error({ err: error }, 'socket frame failed');
    }
    hub.send(peer, encodeError(appError));
  };

  /**
   * Reads a frame at once: a subscription takes effect at once, and only a valid ping or leave
   * waits, in order, for the database (undefined: nothing to store).
   */
  const parse = (data: string | ArrayBuffer): (() => Promise<unknown>) | undefined => {
    const frame = parseClientFrame(data);
    if (frame.event === 'user-ping') {
      const ping = parsePing(frame.data);
      return () => pings.record(ping);
    }
    if (frame.event === 'user-leave') {
      const leave = parseLeave(frame.data);
      return () => leaveSession(deps.db, leave);
    }
    if (frame.event === 'subscribe') {
      // Parsed whole first: an invalid subscription leaves the previous one in force.
      broadcaster.subscribe(peer, parseSubscription(frame.data, deps.maxWatchUsers));
      return undefined;
    }
    throw new AppError(
      'unknown_event',
      400,
      `unknown event ${showEventName(frame.event)}; clients send "user-ping", "user-leave" or "subscribe"`,
    );
  };

  const store = async (job: () => Promise<unknown>) => {
    try {
      await job();
      metrics?.pingHandled('socket', 'stored');
    } catch (error) {
      refuse(error);
    } finally {
      pending -= 1;
    }
  };

  return (data) => {
    const verdict = rate();
    if (verdict === 'close') {
      peer.socket.close(CLOSE_POLICY_VIOLATION, 'too many frames');
      return;
    }
    if (verdict === 'refuse') {
      const message = `more than ${deps.framesPerSecond} frames a second; this one was not read`;
      return refuse(new AppError('too_many_frames', 429, message));
    }
    let job: (() => Promise<unknown>) | undefined;
    try {
      job = parse(data);
    } catch (error) {
      return refuse(error);
    }
    if (job === undefined) return;
    if (pending >= MAX_PENDING_FRAMES) {
      const message = `more than ${MAX_PENDING_FRAMES} pings are waiting; this one was not taken`;
      return refuse(new AppError('too_many_frames', 429, message));
    }
    pending += 1;
    const taken = job;
    queue = queue.then(() => store(taken));
    // Shutdown waits for pings already taken: a socket's close does not cancel them.
    hub.track(queue);
  };
}
