import { upgradeWebSocket } from '@hono/node-server';
import { createRoute } from '@hono/zod-openapi';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { every } from 'hono/combine';
import { z } from 'zod';
import { requireUserKey } from '../../edge/auth.js';
import { checkSocketOrigin } from '../../edge/origins.js';
import { createSocketCounter } from '../../edge/socket-limits.js';
import { AppError } from '../../errors.js';
import { parseSince } from '../../realtime/resume.js';
import { connectWatchSchema, parseConnectWatch } from '../../realtime/subscription.js';
import { DEFAULT_WATCH_USERS, type SocketDeps, webSocketEvents } from '../../ws/endpoint.js';
import { errorResponse, methodNotAllowed } from '../errors.js';
import { errorResponses, KEY_SECURITY } from '../schemas.js';

/**
 * `GET /ws`: the key is checked before the upgrade (401 otherwise); a socket then gets snapshots
 * at once (or, with `?since=`, the changes it missed first) and takes `user-ping` frames. Frames over the size limit are refused by the WebSocket
 * server itself (close 1009), before they are read.
 */
export function socketRoutes(deps: SocketDeps) {
  const userKey = requireUserKey(deps.keys);
  const checkOrigin = checkSocketOrigin(deps.corsOrigins ?? []);
  // (A bad `since` or `users` is refused before the upgrade, like a bad key.)
  const counter = deps.socketCounter ?? createSocketCounter(deps.socketLimits?.perAddress ?? 0);
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
      upgradeWebSocket(webSocketEvents(deps, counter), { onError }),
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
