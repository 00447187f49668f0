import { Server as EngineServer } from 'engine.io';
import { Server, type Socket } from 'socket.io';
import { createKeyCheck, presentedKeys } from '../edge/auth.js';
import { toAppError } from '../edge/errors.js';
import { type AllowedOrigins, checkOrigin } from '../edge/origins.js';
import { createSocketCounter, type SocketCounter, tooManySockets } from '../edge/socket-limits.js';
import { connectPeer } from '../realtime/connect.js';
import type { Peer } from '../realtime/hub.js';
import { parseSince } from '../realtime/resume.js';
import { createFrameHandler, type FrameHandler, type Reply } from '../realtime/session.js';
import { parseConnectWatch, parseSubscription } from '../realtime/subscription.js';
import type { Watch } from '../realtime/watch.js';
import { DEFAULT_WATCH_USERS, MAX_FRAME_BYTES, type SocketDeps } from '../ws/endpoint.js';
import { createSocketIoPeer } from './peer-socket.js';

/** Socket.IO's default path, which the seed's clients use. */
export const SOCKET_IO_PATH = '/socket.io/';

export interface SocketIo {
  /** Engine.IO, to which the HTTP server hands the requests and upgrades of SOCKET_IO_PATH. */
  engine: EngineServer;
  /** Closes every Socket.IO connection (long polls included, which would hold the server). */
  close(): Promise<void>;
}

/**
 * The Socket.IO transport (the seed's own clients) over the realtime core, beside /ws: the same
 * keys, origin rule, flood limits, validation, error codes, subscriptions and resuming. No
 * Socket.IO adapter: every instance already hears every change from PostgreSQL and emits to its
 * own sockets, so a cross-node adapter would deliver each change twice.
 */
export function createSocketIo(deps: SocketDeps): SocketIo {
  const counter = deps.socketCounter ?? createSocketCounter(deps.socketLimits?.perAddress ?? 0);
  // Not attached to the HTTP server: the server hands it SOCKET_IO_PATH itself (server.ts), so
  // that Engine.IO and /ws each leave the other's requests and upgrades alone.
  const engine = new EngineServer({
    // As /ws: a larger message closes the connection before it is read.
    maxHttpBufferSize: MAX_FRAME_BYTES,
    cors: corsFor(deps.corsOrigins ?? []),
  });
  const io = new Server({ path: SOCKET_IO_PATH, serveClient: false });
  io.bind(engine);
  const checkKey = createKeyCheck([deps.keys.access, deps.keys.system]);
  const maxWatchUsers = deps.socketLimits?.watchUsers ?? DEFAULT_WATCH_USERS;

  // Every check of a /ws upgrade, at the connection of the Socket.IO client to its namespace
  // (the key may come in `auth`, which the handshake request does not carry). A refusal reaches
  // the client as `connect_error`, the code as its message.
  io.use((socket, next) => {
    try {
      const { query, headers, auth, address } = socket.handshake;
      checkKey([...presentedKeys(asList(query.key), headers.authorization), ...authKey(auth)]);
      checkOrigin(headers.origin, headers.host, deps.corsOrigins ?? []);
      socket.data.since = parseSince(stringOf(auth.since ?? query.since));
      socket.data.watch = connectWatch(auth.users ?? query.users, maxWatchUsers);
      if (!counter.allows(address)) throw tooManySockets(deps.socketLimits?.perAddress ?? 0);
      next();
    } catch (error) {
      const appError = toAppError(error);
      const refusal = new Error(appError.code) as Error & { data: unknown };
      refusal.data = { code: appError.code, message: appError.message };
      next(refusal);
    }
  });
  io.on('connection', (socket) => onConnection(deps, counter, socket, maxWatchUsers));

  return {
    engine,
    async close() {
      io.disconnectSockets(true);
      engine.close();
    },
  };
}

function onConnection(
  deps: SocketDeps,
  counter: SocketCounter,
  socket: Socket,
  maxWatchUsers: number,
): void {
  const { address } = socket.handshake;
  const { since, watch } = socket.data as { since: number | undefined; watch: Watch };
  const peer: Peer | undefined = connectPeer(deps, createSocketIoPeer(socket), { since, watch });
  if (!peer) return;
  counter.opened(address);
  deps.logger.debug(
    { socketId: socket.id, transport: socket.conn.transport.name },
    'socket.io connected',
  );
  let handler: FrameHandler | undefined;
  socket.onAny((event: string, ...args: unknown[]) => {
    const reply = typeof args.at(-1) === 'function' ? (args.pop() as Reply) : undefined;
    handler ??= createFrameHandler({
      ...deps,
      peer,
      transport: 'socketio',
      framesPerSecond: deps.socketLimits?.framesPerSecond ?? 0,
      maxWatchUsers,
    });
    handler.event(event, args[0], reply);
  });
  socket.on('disconnect', (reason) => {
    deps.broadcaster.forget(peer);
    counter.closed(address);
    deps.logger.debug({ socketId: socket.id, reason }, 'socket.io disconnected');
  });
}

/** `users` from `auth` (a list of ids, "all" or "none") or from the query (as on /ws). */
function connectWatch(value: unknown, maxUsers: number): Watch {
  if (Array.isArray(value)) return parseSubscription({ users: value }, maxUsers);
  return parseConnectWatch(asList(value), maxUsers);
}

/** `auth.key`: a key to check if present, an invalid one if it is not a string. */
function authKey(auth: Record<string, unknown>): string[] {
  if (!('key' in auth) || auth.key === undefined) return [];
  return [typeof auth.key === 'string' ? auth.key : ''];
}

const asList = (value: unknown): string[] | undefined =>
  value === undefined ? undefined : [value].flat().map(String);

const stringOf = (value: unknown): string | undefined =>
  value === undefined ? undefined : String(value);

/** CORS for polling requests from the allowed origins; none configured: same origin only. */
function corsFor(origins: AllowedOrigins) {
  if (origins !== '*' && origins.length === 0) return undefined;
  return { origin: origins === '*' ? true : origins, credentials: false };
}
