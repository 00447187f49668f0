import { once } from 'node:events';
import type net from 'node:net';
import type { KyselyPlugin } from 'kysely';
import { afterEach } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { createSocketHub, type Peer, type SocketHub } from '../../src/realtime/hub.js';
import { silentLogger } from './database.js';
import { openSocket, type TestSocket } from './socket.js';

/**
 * A socket hub in the test's process, with real sockets over loopback: each client is
 * registered with the hub as the /ws endpoint does, and its peer handed back. Everything is
 * closed after each test.
 */
export function useLoopbackHub() {
  let server: WebSocketServer | undefined;
  let hub: SocketHub | undefined;
  const clients: TestSocket[] = [];
  const stops: (() => void)[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.terminate();
    for (const stop of stops.splice(0)) stop();
    await hub?.close(100);
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = hub = undefined;
  });
  return {
    async start(options: { maxBufferedBytes?: number } = {}) {
      hub = createSocketHub({ logger: silentLogger, ...options });
      server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
      await once(server, 'listening');
      return hub;
    },
    /** Stopped after the test (a snapshot pump's timers). */
    onStop: (stop: () => void) => stops.push(stop),
    async connect(): Promise<{ client: TestSocket; peer: Peer }> {
      if (!server || !hub) throw new Error('start the hub first');
      const { port } = server.address() as net.AddressInfo;
      const accepted = once(server, 'connection') as Promise<[WebSocket]>;
      const client = await openSocket(`ws://127.0.0.1:${port}`);
      clients.push(client);
      const [socket] = await accepted;
      return { client, peer: hub.add(socket) as Peer };
    },
  };
}

/**
 * Runs `hook` once, when the first result with the given columns has come back from PostgreSQL
 * and before the code that asked has it: something happening while a read is on its way.
 */
export function onFirstResult(columns: string[], hook: () => Promise<void>): KyselyPlugin {
  let done = false;
  return {
    transformQuery: (args) => args.node,
    async transformResult({ result }) {
      const [row] = result.rows as Record<string, unknown>[];
      if (!done && row && columns.every((column) => column in row)) {
        done = true;
        await hook();
      }
      return result;
    },
  };
}
