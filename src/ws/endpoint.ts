import { upgradeWebSocket } from '@hono/node-server';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import type { WSEvents } from 'hono/ws';
import type { Kysely } from 'kysely';
import type { WebSocket } from 'ws';
import type { Database } from '../db/schema.js';
import { AppError } from '../errors.js';
import { requireUserKey } from '../http/auth.js';
import { errorResponse, methodNotAllowed } from '../http/errors.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../logger.js';
import type { PingWriter } from '../presence/ping-writer.js';
import type { Broadcaster } from './broadcaster.js';
import type { Peer, SocketHub } from './hub.js';
import { parseSince, resume } from './resume.js';
import { createFrameHandler, type FrameHandler } from './session.js';

/** Larger frames close the socket (1009) before they are read. */
export const MAX_FRAME_BYTES = 16 * 1024;

export interface SocketDeps {
  db: Kysely<Database>;
  keys: Keys;
  pings: PingWriter;
  logger: Logger;
  hub: SocketHub;
  broadcaster: Broadcaster;
}

/**
 * `GET /ws`: the key is checked before the upgrade (401 otherwise); a socket then gets snapshots
 * at once (or, with `?since=`, the changes it missed first) and takes `user-ping` frames. Frames over the size limit are refused by the WebSocket
 * server itself (close 1009), before they are read.
 */
export function socketRoutes(deps: SocketDeps) {
  const userKey = requireUserKey(deps.keys);
  const onError = (error: unknown) => deps.logger.error({ err: error }, 'socket handler failed');
  return new Hono()
    .get('/', userKey, checkSince, upgradeWebSocket(socketEvents(deps), { onError }), (c) => {
      c.header('Upgrade', 'websocket');
      const message = '/ws is a WebSocket endpoint: connect with a WebSocket client';
      return errorResponse(c, new AppError('upgrade_required', 426, message));
    })
    .all('/', userKey, methodNotAllowed('GET'));
}

/** A bad `since` is refused before the upgrade, like a bad key. */
const checkSince: MiddlewareHandler = async (c, next) => {
  parseSince(c.req.query('since'));
  await next();
};

/** What happens on one socket, from its opening to its close. */
function socketEvents(deps: SocketDeps) {
  const { hub, broadcaster, logger } = deps;
  return (c: Context): WSEvents => {
    const since = parseSince(c.req.query('since'));
    let peer: Peer | undefined;
    let handleFrame: FrameHandler | undefined;
    return {
      onOpen(_event, ws) {
        peer = hub.add(ws.raw as WebSocket);
        if (!peer) return;
        handleFrame = createFrameHandler({ ...deps, peer });
        logger.debug({ sockets: hub.size, since }, 'socket opened');
        if (since === undefined) broadcaster.welcome(peer);
        else hub.track(resume(deps, peer, since));
      },
      onMessage(event) {
        handleFrame?.(event.data as string | ArrayBuffer);
      },
      onClose(event) {
        if (peer) broadcaster.forget(peer);
        logger.debug({ code: event.code, sockets: hub.size }, 'socket closed');
      },
    };
  };
}
