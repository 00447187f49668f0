import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../src/db/embedded.js';

// A scratch database for a benchmark: a database of its own on the server in DATABASE_URL, or,
// without one, a whole embedded server in a temporary folder. Either is removed by drop(), which
// is safe to call more than once and from a signal handler while a query is still running.

export interface ScratchDatabase {
  /** The scratch database. */
  url: string;
  /** The same server's maintenance database (the one in DATABASE_URL, or `postgres`). */
  adminUrl: string;
  name: string;
  kind: 'DATABASE_URL' | 'embedded';
  /** Drops the database (and stops the embedded server, removing its folder). Idempotent. */
  drop(): Promise<void>;
}

export async function createScratchDatabase(options: {
  databaseUrl?: string | undefined;
  log?: (line: string) => void;
}): Promise<ScratchDatabase> {
  const log = options.log ?? (() => {});
  const name = `presently_bench_${randomBytes(6).toString('hex')}`;

  let adminUrl: string;
  let kind: ScratchDatabase['kind'];
  let stopServer = async () => {};
  if (options.databaseUrl) {
    adminUrl = options.databaseUrl;
    kind = 'DATABASE_URL';
  } else {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-bench-'));
    // mkdtemp makes the folder private; run as root, the server's own user must enter it.
    await fs.chmod(dataDir, 0o755);
    log(`starting an embedded PostgreSQL server in ${dataDir}`);
    try {
      const embedded = await startEmbeddedPostgres({ dataDir, logger: pino({ level: 'warn' }) });
      adminUrl = withDatabase(embedded.url, 'postgres');
      stopServer = async () => {
        await embedded.stop();
        await fs.rm(dataDir, { recursive: true, force: true });
      };
    } catch (error) {
      await fs.rm(dataDir, { recursive: true, force: true });
      throw error;
    }
    kind = 'embedded';
  }

  let created = false;
  let dropping: Promise<void> | undefined;
  const drop = () => {
    dropping ??= (async () => {
      try {
        // `with (force)` ends the benchmark's own sessions, a query still running included.
        if (created)
          await withClient(adminUrl, (c) =>
            c.query(`drop database if exists ${name} with (force)`),
          );
      } finally {
        await stopServer();
      }
    })();
    return dropping;
  };

  try {
    await withClient(adminUrl, (c) => c.query(`create database ${name}`));
    created = true;
  } catch (error) {
    await drop().catch(() => {});
    throw error;
  }
  return { url: withDatabase(adminUrl, name), adminUrl, name, kind, drop };
}

/** The same server as `url`, another database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>) {
  const client = new pg.Client({ connectionString: url, application_name: 'presently-bench' });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Runs `cleanup` on SIGINT or SIGTERM, then lets the signal take its ordinary course (the
 * process ends, or whoever else listens handles it). A second signal during cleanup is ignored,
 * so a double Ctrl-C cannot leave a server or a database behind. Answers a function that removes
 * the handlers.
 */
export function onInterrupt(
  cleanup: () => Promise<void>,
  log: (line: string) => void = () => {},
): () => void {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  let interrupted = false;
  const handler = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: cleaning up`);
    void cleanup()
      .catch((error: Error) => log(`cleanup failed: ${error.message}`))
      .finally(() => {
        remove();
        process.kill(process.pid, signal);
      });
  };
  const remove = () => {
    for (const signal of signals) process.off(signal, handler);
  };
  for (const signal of signals) process.on(signal, handler);
  return remove;
}
