import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, inject } from 'vitest';
import { embeddedUrl, makeDataDir, postmasterPid } from '../../helpers/data-dir.js';
import { createTestDatabase } from '../../helpers/database.js';
import { KEYS } from '../../helpers/http.js';
import {
  killLeftovers,
  type RunningService,
  type Spawned,
  startService,
} from '../../helpers/service.js';
import { within } from '../../helpers/wait.js';
import { type PrivatePostgres, startPrivatePostgres } from './private-postgres.js';

// The service under test and the database it uses, as the run's kind of server says:
// - embedded (DATABASE_URL unset for the run): the service with no DATABASE_URL, so on the
//   embedded server it starts and supervises itself;
// - otherwise: the service with DATABASE_URL pointing at a private server of the test's own
//   (see private-postgres.ts), which the test may restart without touching the shared one; or,
//   for tests that never touch the server, at a fresh database on the run's shared server.

export type Kind = 'embedded' | 'external';

export const runKind = (): Kind =>
  inject('databaseServer').kind === 'embedded' ? 'embedded' : 'external';

export interface FaultTarget {
  kind: Kind;
  service: RunningService;
  dataDir: string;
  /** The service's database, as a superuser of its server. */
  url(): Promise<string>;
  /** The private server (external kind, `private` server only). */
  server?: PrivatePostgres;
  /** Where the server's own log is (embedded kind only). */
  serverLog?: string;
  /** Starts another service process on the same DATA_DIR / DATABASE_URL. */
  restartService(): Promise<RunningService>;
  describe: string;
}

export const serviceEnv = { ACCESS_KEY: KEYS.access, ACCESS_KEY_SYSTEM: KEYS.system };

/**
 * Sets the target up for a test file and tears everything down after it (processes first,
 * then the server, then the folders), whatever happened.
 */
export function useFaultTarget(
  options: { external: 'private' | 'shared' } = { external: 'private' },
) {
  const children: Spawned[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    // Stopped as an operator would (the embedded server with them), killed if that hangs.
    await Promise.all(
      children.map(({ child, exited }) => {
        if (child.exitCode !== null || child.signalCode !== null) return exited;
        child.kill('SIGTERM');
        return within('the service to stop', exited, 20_000).catch(() => undefined);
      }),
    );
    await killLeftovers(children);
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  return async function setUp(): Promise<FaultTarget> {
    const kind = runKind();
    const dataDir = await makeDataDir('presently-faults-');
    cleanups.push(async () => {
      // A killed service's embedded server stops by itself, shortly: not under its feet.
      const pid = await postmasterPid(dataDir);
      const deadline = Date.now() + 15_000;
      while (pid && isAlive(pid) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await fs.rm(dataDir, { recursive: true, force: true });
    });
    let server: PrivatePostgres | undefined;
    let externalUrl: string | undefined;
    let describe = 'embedded PostgreSQL (DATA_DIR)';
    if (kind === 'external' && options.external === 'private') {
      server = await startPrivatePostgres();
      cleanups.push(server.destroy);
      externalUrl = server.url;
      describe = `private ${server.version}`;
    } else if (kind === 'external') {
      const database = await createTestDatabase({ migrated: false });
      cleanups.push(database.drop);
      externalUrl = database.url;
      describe = 'a fresh database on the shared server (DATABASE_URL)';
    }
    const env = {
      ...serviceEnv,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      ...(externalUrl ? { DATABASE_URL: externalUrl } : {}),
    };
    const start = () => startService(env, (spawned) => children.push(spawned));
    let known: string | undefined;
    const target: FaultTarget = {
      kind,
      service: await start(),
      dataDir,
      server,
      serverLog: externalUrl ? undefined : path.join(dataDir, 'postgres', 'server.log'),
      // The embedded server's port is read from postmaster.pid while it runs; while it is
      // down (being restarted on the same port), the last one read.
      url: async () => {
        if (externalUrl) return externalUrl;
        known = await embeddedUrl(dataDir).catch(() => known);
        if (!known) throw new Error('the embedded server is not running');
        return known;
      },
      restartService: start,
      describe,
    };
    await target.url();
    return target;
  };
}

export { postmasterPid };

/** The postmaster's pid, from postmaster.pid in `pgdata`. */
export async function postmasterOf(pgdata: string): Promise<number> {
  const pid = Number(
    (await fs.readFile(path.join(pgdata, 'postmaster.pid'), 'utf8')).split('\n')[0],
  );
  if (!(pid > 0)) throw new Error(`no postmaster pid in ${pgdata}`);
  return pid;
}

/** The server's processes: the postmaster and its children (backends and helpers). */
export async function serverProcesses(postmaster: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === postmaster) children.push(Number(entry));
  }
  return [postmaster, ...children];
}

/**
 * Freezes the server (SIGSTOP to every one of its processes) for `ms`, as a machine that stops
 * answering without closing anything would: connections stay open and silent, new ones are
 * accepted by the kernel and never answered. Always thawed, even if the wait is interrupted.
 */
export async function freeze(postmaster: number, ms: number): Promise<void> {
  const stopped: number[] = [];
  try {
    // The postmaster first, so that it starts no process meanwhile, then its children.
    process.kill(postmaster, 'SIGSTOP');
    stopped.push(postmaster);
    for (const pid of (await serverProcesses(postmaster)).slice(1)) {
      try {
        process.kill(pid, 'SIGSTOP');
        stopped.push(pid);
      } catch {}
    }
    await new Promise((resolve) => setTimeout(resolve, ms));
  } finally {
    for (const pid of stopped.reverse()) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {}
    }
  }
}

export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** How many times the log says `line` so far. */
export const occurrences = (text: string, line: string) => text.split(line).length - 1;
