import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadBinaries, postgresUser, type RunAs } from '../../../src/db/embedded-cluster.js';
import { withAdmin } from '../../helpers/admin.js';
import { closedPort } from '../../helpers/wait.js';

// A PostgreSQL server of the test's own, managed with pg_ctl like an operator would, so that it
// can be restarted under a running service. The shared server of the run (DATABASE_URL) is never
// restarted: other test files use it.

const run = promisify(execFile);

/** The machine's PostgreSQL 15 (as in CI); failing that, the binaries presently embeds. */
const SYSTEM_BIN = '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  /** The `presently` database, as the superuser. */
  url: string;
  port: number;
  /** Its data folder (postmaster.pid is there). */
  pgdata: string;
  /** The server's version line, for test names and reports. */
  version: string;
  /** `pg_ctl restart -m <mode>`: returns once the server takes connections again. */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl stop -m <mode>`, waiting until it is down. */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  /** `pg_ctl start`, waiting until it takes connections. */
  start(): Promise<void>;
  /** Stops the server (immediate) and removes its folder; safe to call twice. */
  destroy(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = await binDir();
  const runAs = await postgresUser();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-faults-pg-'));
  await fs.chmod(dir, 0o755);
  const pgdata = path.join(dir, 'data');
  const log = path.join(pgdata, 'server.log');
  const password = randomBytes(18).toString('base64url');
  const tool = (name: string, args: string[]) =>
    run(path.join(bin, name), args, {
      ...runAs,
      cwd: dir,
      env: { PATH: process.env.PATH, LC_ALL: 'C' },
      timeout: 90_000,
    });
  const pgCtl = (args: string[]) => tool('pg_ctl', ['-D', pgdata, '-w', '-t', '60', ...args]);

  let destroyed = false;
  // A worker that dies without running afterAll must not leave a server behind.
  const onExit = () => {
    try {
      execFileSync(path.join(bin, 'pg_ctl'), ['-D', pgdata, '-m', 'immediate', 'stop'], {
        ...runAs,
        stdio: 'ignore',
        timeout: 10_000,
      });
    } catch {}
  };
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    process.off('exit', onExit);
    await pgCtl(['-m', 'immediate', 'stop']).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  };

  try {
    await fs.mkdir(pgdata, { mode: 0o700 });
    const pwfile = path.join(dir, 'pwfile');
    await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (runAs) await chownAll(runAs, pgdata, pwfile);
    await tool('initdb', [
      '-D',
      pgdata,
      '-U',
      'postgres',
      '--auth=scram-sha-256',
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--no-locale',
      '--no-instructions',
    ]);
    await fs.rm(pwfile);
    const port = await closedPort();
    await fs.appendFile(
      path.join(pgdata, 'postgresql.conf'),
      [
        '',
        `port = ${port}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = ''`,
        'shared_buffers = 32MB',
        '',
      ].join('\n'),
    );
    process.on('exit', onExit);
    await pgCtl(['-l', log, 'start']);
    const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
    const version = await withAdmin(adminUrl, async (admin) => {
      await admin.query('create database presently');
      const { rows } = await admin.query<{ v: string }>(
        `select current_setting('server_version') as v`,
      );
      return rows[0]?.v ?? '?';
    });
    return {
      url: `postgres://postgres:${password}@127.0.0.1:${port}/presently`,
      port,
      pgdata,
      version: `PostgreSQL ${version} (${bin === SYSTEM_BIN ? 'system' : 'embedded binaries'})`,
      restart: async (mode) => void (await pgCtl(['-l', log, '-m', mode, 'restart'])),
      stop: async (mode) => void (await pgCtl(['-m', mode, 'stop'])),
      start: async () => void (await pgCtl(['-l', log, 'start'])),
      destroy,
    };
  } catch (error) {
    const tail = await fs.readFile(log, 'utf8').catch(() => '');
    await destroy();
    throw new Error(`the private PostgreSQL did not start: ${(error as Error).message}\n${tail}`, {
      cause: error,
    });
  }
}

async function binDir(): Promise<string> {
  const system = await fs.access(path.join(SYSTEM_BIN, 'pg_ctl')).then(
    () => true,
    () => false,
  );
  if (system) return SYSTEM_BIN;
  return path.dirname((await loadBinaries()).postgres);
}

async function chownAll(runAs: RunAs, ...files: string[]) {
  for (const file of files) await fs.chown(file, runAs.uid, runAs.gid);
}
