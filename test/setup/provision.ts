import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';

export interface DatabaseServer {
  /** A URL to the server's maintenance database, for creating and dropping databases. */
  adminUrl: string;
  kind: 'DATABASE_URL' | 'testcontainers' | 'embedded';
  stop(): Promise<void>;
}

/**
 * The PostgreSQL the tests run against, in this order: the server in DATABASE_URL; a container
 * when a Docker engine answers; otherwise the embedded server the service itself uses.
 */
export async function provisionDatabaseServer(): Promise<DatabaseServer> {
  const url = process.env.DATABASE_URL;
  if (url) return { adminUrl: url, kind: 'DATABASE_URL', stop: async () => {} };
  if (await dockerAnswers()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:18-alpine').start();
    return {
      adminUrl: container.getConnectionUri(),
      kind: 'testcontainers',
      stop: async () => void (await container.stop()),
    };
  }
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-test-pg-'));
  // mkdtemp makes the folder private; run as root, the server's own user must enter it.
  await fs.chmod(dataDir, 0o755);
  const embedded = await startEmbeddedPostgres({ dataDir, logger: pino({ level: 'warn' }) });
  return {
    adminUrl: embedded.url,
    kind: 'embedded',
    stop: async () => {
      await embedded.stop();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A Docker engine, not just its client: the socket (or DOCKER_HOST) must answer a ping. */
async function dockerAnswers(): Promise<boolean> {
  if (process.env.DOCKER_HOST) return true;
  return new Promise((resolve) => {
    const socket = net.connect('/var/run/docker.sock');
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('GET /_ping HTTP/1.0\r\n\r\n'));
    socket.once('data', (chunk) => done(chunk.toString().includes('200 OK')));
  });
}
