import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { toAppError } from '../edge/errors.js';
import { createFrameRate } from '../edge/socket-limits.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PingMetrics, PingTransport } from '../metrics/metrics.js';
import type { PingWriter } from '../presence/ping-writer.js';
import { leaveSession, parseLeave } from '../presence/sessions.js';
import { parsePing, parsePings } from '../presence/validation.js';
import type { Broadcaster } from './broadcaster.js';
import {
  type Ack,
  type ClientFrame,
  encodeError,
  encodeFrame,
  parseClientFrame,
  showEventName,
} from './frames.js';
import type { Peer, SocketHub } from './hub.js';
import { parseSubscription } from './subscription.js';

/** Closing code for a socket that broke the rules (here: kept flooding). */
const CLOSE_POLICY_VIOLATION = 1008;

/** A ping (or leave) taken, to be written in its socket's order; resolves with the answer. */
type Write = () => Promise<unknown>;

/** Pings a socket may have waiting for the database before it is read no further. */
export const MAX_PENDING_FRAMES = 64;
/** It is read again once this few are left. */
const RESUME_BELOW = MAX_PENDING_FRAMES / 2;

/** An acknowledgement: the REST body, `{"data": ...}` or `{"error": {"code", "message"}}`. */
export type Reply = (
  answer: { data: unknown } | { error: { code: string; message: string } },
) => void;

export interface FrameHandler {
  /** A raw frame, `{"event", "data"}` as JSON text (/ws). */
  frame(raw: string | ArrayBuffer): void;
  /** An event its transport has already parsed (Socket.IO), with its acknowledgement if any. */
  event(event: string, data: unknown, reply?: Reply): void;
}

/**
 * Handles one socket's events in the order they came, whatever its transport: a `user-ping` then
 * another from the same socket are stored in that order, so the last one sent is the status that
 * stays. Anything the service cannot take is answered (the acknowledgement if the client asked
 * for one, an `error` event otherwise), and the socket stays open.
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
  /** The transport, for metrics (default `socket`, the /ws transport). */
  transport?: PingTransport;
  /** LIMIT_FRAMES_PER_SECOND; 0 or absent: no limit. */
  framesPerSecond?: number;
}): FrameHandler {
  const { pings, hub, broadcaster, logger, peer, metrics } = deps;
  const transport = deps.transport ?? 'socket';
  const rate = createFrameRate(deps.framesPerSecond ?? 0);
  let queue = Promise.resolve();
  let pending = 0;
  let paused = false;

  const refuse = (error: unknown, reply?: Reply) => {
    const appError = toAppError(error);
    metrics?.pingHandled(transport, appError.status < 500 ? 'refused' : 'failed');
    if (appError.status >= 500 && appError.status !== 503) {
      logger.error({ err: error }, 'socket frame failed');
    }
    if (reply) reply({ error: { code: appError.code, message: appError.message } });
    else hub.send(peer, encodeError(appError));
  };

  /**
   * Takes an event at once: a subscription takes effect at once, and only a valid ping (or
   * leave) waits, in order, for the database: the write it stands for is returned (undefined:
   * nothing to write).
   */
  const take = (event: string, data: unknown, reply?: Reply): Write | undefined => {
    if (event === 'user-ping') {
      const ping = parsePing(data);
      return () => pings.record(ping);
    }
    // A bulk ping (POST /users/pings' body): validated whole, stored as one group.
    if (event === 'user-pings') {
      const group = parsePings(data);
      return () => pings.recordMany(group);
    }
    if (event === 'user-leave') {
      const leave = parseLeave(data);
      return async () => {
        await leaveSession(deps.db, leave);
        return { left: true };
      };
    }
    if (event === 'subscribe') {
      // Parsed whole first: an invalid subscription leaves the previous one in force.
      const watch = parseSubscription(data, deps.maxWatchUsers);
      broadcaster.subscribe(peer, watch);
      reply?.({ data: { following: watch === 'all' ? 'all' : watch.size } });
      return undefined;
    }
    throw new AppError(
      'unknown_event',
      400,
      `unknown event ${showEventName(event)}; clients send "user-ping", "user-pings", "user-leave" or "subscribe"`,
    );
  };

  const store = async (write: Write, reply?: Reply) => {
    try {
      const result = await write();
      metrics?.pingHandled(transport, 'stored');
      reply?.({ data: result });
    } catch (error) {
      refuse(error, reply);
    } finally {
      pending -= 1;
      if (paused && pending <= RESUME_BELOW) {
        paused = false;
        peer.socket.resume?.();
      }
    }
  };

  const handle = (event: string, data: unknown, reply?: Reply) => {
    const verdict = rate();
    if (verdict === 'close') {
      peer.socket.close(CLOSE_POLICY_VIOLATION, 'too many frames');
      return;
    }
    if (verdict === 'refuse') {
      const message = `more than ${deps.framesPerSecond} frames a second; this one was not read`;
      return refuse(new AppError('too_many_frames', 429, message), reply);
    }
    let write: Write | undefined;
    try {
      write = take(event, data, reply);
    } catch (error) {
      return refuse(error, reply);
    }
    if (write === undefined) return;
    // Back-pressure: with this many pings waiting for the database, the socket is read no
    // further until they are stored, and TCP slows the client down. The frames already read
    // from the network (one read's worth at most) are still taken. A transport that cannot stop
    // reading (long-polling) refuses instead.
    if (pending >= MAX_PENDING_FRAMES && !paused) {
      paused = peer.socket.pause ? peer.socket.pause() !== false : false;
      if (!paused) {
        const message = `more than ${MAX_PENDING_FRAMES} pings are waiting; this one was not taken`;
        return refuse(new AppError('too_many_frames', 429, message), reply);
      }
    }
    pending += 1;
    const taken = write;
    queue = queue.then(() => store(taken, reply));
    // Shutdown waits for pings already taken: a socket's close does not cancel them.
    hub.track(queue);
  };

  return {
    frame(raw) {
      let frame: ClientFrame;
      try {
        frame = parseClientFrame(raw);
      } catch (error) {
        return refuse(error);
      }
      const { event, data, ack } = frame;
      handle(event, data, ack === undefined ? undefined : answerOnWebSocket(event, ack));
    },
    event: (event, data, reply) => handle(event, data, reply),
  };

  /**
   * /ws's acknowledgements: `{"event": "ack", "data": {"ack", "counts"}}` once a ping is stored
   * (`following` for a subscription), or an `error` frame whose data carries the same `ack`.
   */
  function answerOnWebSocket(event: string, ack: Ack): Reply {
    return (answer) => {
      if ('error' in answer) {
        hub.send(peer, encodeFrame('error', { ...answer.error, ack }));
      } else {
        const result = event === 'subscribe' ? (answer.data as object) : { counts: answer.data };
        hub.send(peer, encodeFrame('ack', { ack, ...result }));
      }
    };
  }
}
