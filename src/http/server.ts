import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ServerType, serve } from '@hono/node-server';
import type { WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';
import type { ErrorBody } from './errors.js';

type UpgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

export interface ServerOptions {
  fetch: Parameters<typeof serve>[0]['fetch'];
  /** The WebSocket server (noServer) that @hono/node-server upgrades `/ws` into. */
  sockets: WebSocketServer;
  hostname: string;
  port: number;
  logger: Logger;
}

/**
 * Starts the HTTP server and resolves once it listens. The server owns every connection it
 * accepts, upgrades included: see `ownUpgrades`.
 */
export function startServer(options: ServerOptions): Promise<ServerType> {
  const { fetch, sockets, hostname, port, logger } = options;
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port, websocket: { server: sockets } }, (info) => {
      logger.info({ host: info.address, port: info.port }, 'presently is listening');
      resolve(server);
    });
    ownUpgrades(server, logger);
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
export function ownUpgrades(server: ServerType, logger: Logger): void {
  const webSocketUpgrade = server.listeners('upgrade')[0] as UpgradeListener | undefined;
  server.removeAllListeners('upgrade');
  const ignoreError = (error: Error) => logger.debug({ reason: error.message }, 'upgrade aborted');
  server.on('upgrade', async (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', ignoreError);
    if (!webSocketUpgrade || request.headers.upgrade?.toLowerCase() !== 'websocket') {
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
