import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A fresh DATA_DIR that the server's own user can enter when the tests run as root. */
export async function makeDataDir(prefix = 'presently-data-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.chmod(dir, 0o755);
  return dir;
}

export async function readKeys(
  dataDir: string,
): Promise<{ ACCESS_KEY: string; ACCESS_KEY_SYSTEM: string }> {
  return JSON.parse(await fs.readFile(path.join(dataDir, 'keys.json'), 'utf8'));
}

export async function postmasterPid(dataDir: string): Promise<number | undefined> {
  const text = await fs
    .readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')
    .catch(() => '');
  const pid = Number(text.split('\n')[0]);
  return pid > 0 ? pid : undefined;
}

/** The embedded server's `presently` database: its password file and postmaster.pid's port. */
export async function embeddedUrl(dataDir: string): Promise<string> {
  const password = (await fs.readFile(path.join(dataDir, 'postgres.password'), 'utf8')).trim();
  const pidFile = await fs.readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8');
  const port = Number(pidFile.split('\n')[3]);
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/presently`;
}
