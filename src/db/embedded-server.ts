import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../logger.js';

// The embedded server as a process: started with pg_ctl, watched, started again if it dies.

export type PgCtl = (args: string[]) => Promise<unknown>;

const WATCHDOG_INTERVAL_MS = 2_000;

/**
 * The server is ours: if it stops without being asked (killed, crashed), it is started again
 * on the same port, so the pool's URL stays right and requests recover by themselves.
 */
export function superviseServer(
  pgdata: string,
  port: number,
  pgCtl: PgCtl,
  logger: Logger,
): { stop(): Promise<void> } {
  let check: Promise<void> | undefined;
  const restartIfDown = async () => {
    try {
      if (await postmasterAlive(pgdata)) return;
      logger.warn({ port }, 'embedded PostgreSQL is not running: starting it again');
      await startServer(pgdata, pgCtl, port);
      logger.info({ port }, 'embedded PostgreSQL started again');
    } catch (error) {
      logger.error({ err: error }, 'embedded PostgreSQL could not be started again; will retry');
    }
  };
  const timer = setInterval(() => {
    check ??= restartIfDown().finally(() => {
      check = undefined;
    });
  }, WATCHDOG_INTERVAL_MS);
  timer.unref();
  return {
    // Waits for a restart in progress, so that stopping never races with starting.
    stop: async () => {
      clearInterval(timer);
      await check;
    },
  };
}

export async function postmasterAlive(pgdata: string): Promise<boolean> {
  const pidFile = await fs.readFile(path.join(pgdata, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(pidFile.split('\n')[0]);
  return pid > 0 && isAlive(pid);
}

/** Starts the server on `port`, or on a free port when none is given. Answers the port. */
export async function startServer(
  pgdata: string,
  pgCtl: PgCtl,
  fixedPort?: number,
): Promise<number> {
  const log = path.join(pgdata, 'server.log');
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    // No Unix socket: its default folder may not exist here, and TCP on loopback is enough.
    const serverOptions = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
    try {
      await pgCtl(['start', '-D', pgdata, '-l', log, '-w', '-t', '60', '-o', serverOptions]);
      return port;
    } catch (error) {
      // The free port may have been taken meanwhile: try another, or the same one again.
      if (attempt >= 3) {
        const tail = (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').slice(-15);
        throw new Error(`embedded PostgreSQL did not start:\n${tail.join('\n')}`, { cause: error });
      }
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
