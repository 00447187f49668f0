import { type HttpBindings, upgradeWebSocket } from '@hono/node-server';
import { createRoute } from '@hono/zod-openapi';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { every } from 'hono/combine';
import type { WSEvents } from 'hono/ws';
import type { Kysely } from 'kysely';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { Database } from '../db/schema.js';
import { AppError } from '../errors.js';
import { requireUserKey } from '../http/auth.js';
import { errorResponse, methodNotAllowed } from '../http/errors.js';
import { type AllowedOrigins, checkSocketOrigin } from '../http/origins.js';
import { clientAddress } from '../http/rate-limit.js';
import { errorResponses, KEY_SECURITY } from '../http/schemas.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../logger.js';
import type { PingMetrics } from '../metrics/metrics.js';
import type { PingWriter } from '../presence/ping-writer.js';
import { connectWatchSchema, parseConnectWatch } from '../realtime/subscription.js';
import type { Broadcaster } from './broadcaster.js';
import type { Peer, SocketHub } from './hub.js';
import { createSocketCounter } from './limits.js';
import { parseSince, resume } from './resume.js';
import { createFrameHandler, type FrameHandler } from './session.js';

/** LIMIT_WATCH_USERS's default. */
export const DEFAULT_WATCH_USERS = 1_000;

/** Larger frames close the socket (1009) before they are read. */
export const MAX_FRAME_BYTES = 16 * 1024;

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
}

/**
 * `GET /ws`: the key is checked before the upgrade (401 otherwise); a socket then gets snapshots
 * at once (or, with `?since=`, the changes it missed first) and takes `user-ping` frames. Frames over the size limit are refused by the WebSocket
 * server itself (close 1009), before they are read.
 */
export function socketRoutes(deps: SocketDeps) {
  const userKey = requireUserKey(deps.keys);
  const checkOrigin = checkSocketOrigin(deps.corsOrigins ?? []);
  // (A bad `since` or `users` is refused before the upgrade, like a bad key.)
  const counter = createSocketCounter(deps.socketLimits?.perAddress ?? 0);
  const onError = (error: unknown) => deps.logger.error({ err: error }, 'socket handler failed');
  // The checks run as one handler: the router makes an entry for each handler matching a request
  // (about 250 bytes), and upgradeWebSocket keeps the upgrade's for as long as its socket lives.
  const maxWatchUsers = deps.socketLimits?.watchUsers ?? DEFAULT_WATCH_USERS;
  const checkQuery: MiddlewareHandler = async (c, next) => {
    parseSince(c.req.query('since'));
    parseConnectWatch(c.req.queries('users'), maxWatchUsers);
    await next();
  };
  const checks = every(userKey, checkOrigin, checkQuery, counter.check);
  return new Hono()
    .get(
      '/',
      checks,
      onlyUpgrades,
      upgradeWebSocket(socketEvents(deps, counter), { onError }),
      upgradeRequired,
    )
    .all('/', userKey, methodNotAllowed('GET'));
}

function upgradeRequired(c: Context): Response {
  c.header('Upgrade', 'websocket');
  const message = '/ws is a WebSocket endpoint: connect with a WebSocket client';
  return errorResponse(c, new AppError('upgrade_required', 426, message));
}

/**
 * A request reaches the server's upgrade path only when `Connection` lists `upgrade` (RFC 9110,
 * 7.8); one with `Upgrade: websocket` alone is an ordinary request, which cannot become a socket.
 */
const onlyUpgrades: MiddlewareHandler = async (c, next) => {
  const connection = c.req.header('Connection') ?? '';
  const asksUpgrade = connection
    .split(',')
    .some((token) => token.trim().toLowerCase() === 'upgrade');
  if (!asksUpgrade) return upgradeRequired(c);
  await next();
};

/** What happens on one socket, from its opening to its close. */
function socketEvents(deps: SocketDeps, counter: ReturnType<typeof createSocketCounter>) {
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
        peer = hub.add(ws.raw as WebSocket);
        if (!peer) return;
        counter.opened(address);
        broadcaster.follow(peer, watch);
        deps.logger.debug({ requestId, sockets: hub.size, since }, 'socket opened');
        if (since === undefined) broadcaster.welcome(peer);
        else hub.track(resume(deps, peer, since));
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
        handleFrame(event.data as string | ArrayBuffer);
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

/** `/ws` in the OpenAPI document; the protocol itself is in docs/websocket.md. */
export const socketRouteDocs = [
  createRoute({
    method: 'get',
    path: '/ws',
    tags: ['presence'],
    summary: 'Open the WebSocket (see docs/websocket.md)',
    description:
      'Upgraded to a WebSocket carrying JSON frames {"event", "data"}: snapshots and changes from the server, user-ping from the client. With since, the changes after that position are sent first.',
    security: KEY_SECURITY,
    request: {
      query: z.object({
        since: z
          .string()
          .regex(/^\d{1,15}$/)
          .optional()
          .meta({ description: 'Resume after this change log position' }),
        users: connectWatchSchema.optional(),
      }),
    },
    responses: {
      101: { description: 'Switching Protocols: the socket is open' },
      426: { description: 'A plain HTTP request: connect with a WebSocket client' },
      ...errorResponses(400, 401),
    },
  }),
];
