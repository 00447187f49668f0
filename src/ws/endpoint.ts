import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { WSEvents } from 'hono/ws';
import type { Kysely } from 'kysely';
import type { WebSocket } from 'ws';
import type { Database } from '../db/schema.js';
import type { AllowedOrigins } from '../edge/origins.js';
import { clientAddress } from '../edge/rate-limit.js';
import { MAX_BULK_MESSAGE_BYTES } from '../edge/sizes.js';
import type { SocketCounter } from '../edge/socket-limits.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../logger.js';
import type { PingMetrics } from '../metrics/metrics.js';
import type { PingWriter } from '../presence/ping-writer.js';
import type { Broadcaster } from '../realtime/broadcaster.js';
import { connectPeer } from '../realtime/connect.js';
import type { Peer, SocketHub } from '../realtime/hub.js';
import { parseSince } from '../realtime/resume.js';
import { createFrameHandler, type FrameHandler } from '../realtime/session.js';
import { parseConnectWatch } from '../realtime/subscription.js';

// The plain WebSocket transport (`/ws`): one socket's life over the realtime core. The HTTP
// route that upgrades to it, with its checks, is src/http/routes/socket.ts.

/** LIMIT_WATCH_USERS's default. */
export const DEFAULT_WATCH_USERS = 1_000;

/**
 * Larger frames close the socket (1009) before they are read. As large as a bulk body, so that
 * `user-pings` carries what `POST /users/pings` does (1,000 pings); it bounds the memory a
 * frame being received holds, as the body limit does a request's.
 */
export const MAX_FRAME_BYTES = MAX_BULK_MESSAGE_BYTES;

export interface SocketDeps {
  db: Kysely<Database>;
  keys: Keys;
  pings: PingWriter;
  logger: Logger;
  hub: SocketHub;
  broadcaster: Broadcaster;
  metrics?: PingMetrics;
  /** Pages of other origins allowed to open sockets (CORS_ORIGINS); default none. */
  corsOrigins?: AllowedOrigins;
  /** Flood limits (0 or absent: none), and how many users a socket may follow by id. */
  socketLimits?: { perAddress: number; framesPerSecond: number; watchUsers?: number };
  /** Open sockets per address, shared by both socket transports (default: one of its own). */
  socketCounter?: SocketCounter;
}

/** What happens on one socket, from its opening to its close. */
export function webSocketEvents(deps: SocketDeps, counter: SocketCounter) {
  const { hub, broadcaster } = deps;
  const framesPerSecond = deps.socketLimits?.framesPerSecond ?? 0;
  const maxWatchUsers = deps.socketLimits?.watchUsers ?? DEFAULT_WATCH_USERS;
  return (c: Context): WSEvents => {
    const address = clientAddress(c);
    // Every line about this socket carries its upgrade request's id: as a field of each line,
    // not through a child logger (a pino child costs about 0.9 KiB, and an idle socket only
    // logs its opening and closing, at debug level).
    const { requestId } = c.var;
    const since = parseSince(c.req.query('since'));
    const watch = parseConnectWatch(c.req.queries('users'), maxWatchUsers);
    let peer: Peer | undefined;
    let handleFrame: FrameHandler | undefined;
    return {
      onOpen(_event, ws) {
        releaseUpgradeRequest(c);
        peer = connectPeer(deps, ws.raw as WebSocket, { since, watch });
        if (!peer) return;
        counter.opened(address);
        deps.logger.debug({ requestId, sockets: hub.size, since }, 'socket opened');
      },
      onMessage(event) {
        if (!peer) return;
        // Made on the first frame: most sockets only listen, and an idle socket should cost
        // as little as possible (its frame rate is counted from its first frame either way).
        handleFrame ??= createFrameHandler({
          ...deps,
          logger: deps.logger.child({ requestId }),
          peer,
          framesPerSecond,
          maxWatchUsers,
        });
        handleFrame.frame(event.data as string | ArrayBuffer);
      },
      onClose(event) {
        if (peer) {
          broadcaster.forget(peer);
          counter.closed(address);
        }
        deps.logger.debug({ requestId, code: event.code, sockets: hub.size }, 'socket closed');
      },
    };
  };
}

/**
 * @hono/node-server's `upgradeWebSocket` keeps the upgrade's Context for as long as the socket
 * lives: the socket's listeners are closures in the scope that holds it. Once the socket is
 * open, the upgrade has been answered (the 101 is written, every middleware has run) and nothing
 * reads the Context again, so what it holds that can be reached is let go: the answer with its
 * many headers, and the Node request. About 3.5 KiB of every idle socket. The rest (the Request,
 * the matched route) is private to the Context.
 */
function releaseUpgradeRequest(c: Context<{ Bindings: Partial<HttpBindings> }>): void {
  c.res = undefined;
  c.env.incoming = undefined;
}
