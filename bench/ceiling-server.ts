import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { nextMessage, onCleanup, spawnScript } from './process.js';

// The HTTP ceiling: the service's own server stack (Hono on @hono/node-server) answering
// `POST /users/ping` with a constant JSON body, with no key check, no validation and no
// database. It reads the request body, as the real route does. Run as a process of its own, like
// the service, so that it does not share a core's event loop with the load generator.

const COUNTS = { data: { available: 1, busy: 0, away: 0 } };

export interface CeilingServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startCeilingServer(): Promise<CeilingServer> {
  const child = spawnScript('ceiling-server.ts');
  const stop = onCleanup(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  const isReady = (m: unknown): m is { port: number } =>
    typeof m === 'object' && m !== null && typeof (m as { port?: unknown }).port === 'number';
  try {
    const { port } = await nextMessage(child, isReady, 30_000);
    if (child.pid === undefined) throw new Error('the ceiling server has no pid');
    return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function main() {
  const app = new Hono().post('/users/ping', async (c) => {
    await c.req.text();
    return c.json(COUNTS);
  });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
    process.send?.({ port: info.port });
  });
  const end = () => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', end);
  process.on('SIGINT', end);
  // The parent went away: so does the ceiling server.
  process.on('disconnect', end);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
