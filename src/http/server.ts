import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ServerType, serve } from '@hono/node-server';
import type { WebSocketServer } from 'ws';
import type { RateLimiter } from '../edge/rate-limit.js';
import type { Logger } from '../logger.js';
import type { ErrorBody } from './errors.js';
import { REQUEST_ID_HEADER, requestIdOf } from './request-context.js';

type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

export interface ServerOptions {
  fetch: Parameters<typeof serve>[0]['fetch'];
  /** The WebSocket server (noServer) that @hono/node-server upgrades `/ws` into. */
  sockets: WebSocketServer;
  hostname: string;
  port: number;
  logger: Logger;
  /** Socket.IO's Engine.IO server, handed the requests and upgrades under its path. */
  socketIo?: SocketIoEntry;
  /** Requests per client address, for the requests that do not reach the app (Socket.IO's). */
  requestLimiter?: RateLimiter;
}

export interface SocketIoEntry {
  path: string;
  engine: {
    handleRequest(request: IncomingMessage, response: ServerResponse): void;
    handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  };
}

/**
 * Starts the HTTP server and resolves once it listens. The server owns every connection it
 * accepts, upgrades included: see `ownUpgrades`.
 */
export function startServer(options: ServerOptions): Promise<ServerType> {
  const { fetch, sockets, hostname, port, logger, socketIo } = options;
  const routed = socketIo ? routeSocketIo(socketIo, options) : undefined;
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch, hostname, port, websocket: { server: sockets }, createServer: routed },
      (info) => {
        logger.info({ host: info.address, port: info.port }, 'presently is listening');
        resolve(server);
      },
    );
    ownUpgrades(server, logger, socketIo);
    server.once('error', reject);
  });
}

/**
 * Node hands a connection asking for an upgrade to the server's 'upgrade' listeners and forgets
 * it. @hono/node-server's listener only takes WebSocket upgrades and returns on any other (an
 * `Upgrade: h2c` from `curl --http2`), leaving that connection unanswered, its descriptor open
 * for good and its errors unhandled, which ends the process. So its listener is taken over:
 * every upgrade connection gets an error handler first, WebSocket upgrades go to it (the app
 * then judges the path, the key and the rest), and every other upgrade is answered 400 and
 * closed. A connection whose upgrade was refused is destroyed once the answer is written, so a
 * client that never closes its side cannot keep it open.
 */
export function ownUpgrades(server: ServerType, logger: Logger, socketIo?: SocketIoEntry): void {
  const webSocketUpgrade = server.listeners('upgrade')[0] as UpgradeListener | undefined;
  server.removeAllListeners('upgrade');
  const ignoreError = (error: Error) => logger.debug({ reason: error.message }, 'upgrade aborted');
  server.on('upgrade', async (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', ignoreError);
    const isWebSocket = request.headers.upgrade?.toLowerCase() === 'websocket';
    if (isWebSocket && socketIo && request.url?.startsWith(socketIo.path)) {
      // Engine.IO answers (or refuses) its own upgrades, and destroys what it refuses.
      socketIo.engine.handleUpgrade(request, socket, head);
      return;
    }
    if (!webSocketUpgrade || !isWebSocket) {
      refuseUpgrade(socket, request.headers.upgrade ?? '');
      return;
    }
    try {
      await webSocketUpgrade(request, socket, head);
    } finally {
      // Refused (401, 400...): the answer has been written and our side ended.
      if (socket.writableEnded) destroyWhenWritten(socket);
    }
  });
}

/**
 * A `createServer` for @hono/node-server that hands Socket.IO's path to Engine.IO, every other
 * request to the app. The requests Engine.IO takes (long polls, the handshake) get what the app
 * gives its own: the rate limit per address, an id (X-Request-Id) and a line in the request log.
 */
function routeSocketIo(socketIo: SocketIoEntry, options: ServerOptions): typeof createServer {
  const { logger, requestLimiter } = options;
  return ((serverOptions: object, app: (req: IncomingMessage, res: ServerResponse) => void) =>
    createServer(serverOptions, (request, response) => {
      if (!request.url?.startsWith(socketIo.path)) return app(request, response);
      const requestId = requestIdOf(request.headers['x-request-id'] as string | undefined);
      response.setHeader(REQUEST_ID_HEADER, requestId);
      const started = performance.now();
      response.once('finish', () => {
        const status = response.statusCode;
        const level = status >= 500 ? 'warn' : 'debug';
        const ms = Math.round((performance.now() - started) * 10) / 10;
        logger[level](
          { requestId, method: request.method, path: socketIo.path, status, ms },
          'request',
        );
      });
      const address = request.socket.remoteAddress ?? 'local';
      if (requestLimiter && !requestLimiter.take(address)) {
        const body: ErrorBody = {
          error: {
            code: 'rate_limited',
            message: 'too many requests from this address; slow down',
          },
        };
        response.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
        response.end(JSON.stringify(body));
        return;
      }
      socketIo.engine.handleRequest(request, response);
    })) as typeof createServer;
}

function refuseUpgrade(socket: Duplex, protocol: string): void {
  const body: ErrorBody = {
    error: {
      code: 'upgrade_not_supported',
      message: `this server does not upgrade to ${JSON.stringify(protocol.slice(0, 64))}; only WebSocket upgrades to its socket paths are served`,
    },
  };
  const json = JSON.stringify(body);
  const head = [
    'HTTP/1.1 400 Bad Request',
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(json)}`,
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${json}`);
  destroyWhenWritten(socket);
}

/** Destroys the connection once what was written to it is flushed, whatever the client does. */
function destroyWhenWritten(socket: Duplex): void {
  if (socket.destroyed) return;
  if (socket.writableFinished) socket.destroy();
  else socket.once('finish', () => socket.destroy());
}

const REQUEST_GRACE_MS = 250;

/**
 * Serves a moment longer, then stops accepting, lets requests in flight finish and closes idle
 * connections. The moment is for requests already on their way when the signal came
 * (connections waiting to be accepted): they are answered rather than reset.
 */
export async function closeServer(server: ServerType): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, REQUEST_GRACE_MS));
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Keep-alive connections become idle as their last response goes out; close them then
  // rather than after the keep-alive timeout.
  const sweep = setInterval(() => {
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  }, 50);
  await closed;
  clearInterval(sweep);
}
