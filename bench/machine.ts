import fs from 'node:fs/promises';
import os from 'node:os';
import type pg from 'pg';
import { round } from './stats.js';

// The machine and the database server the numbers were taken on.

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  postgres: string;
  postgresSettings: Record<string, string>;
}

const SETTINGS = [
  'shared_buffers',
  'max_connections',
  'synchronous_commit',
  'wal_sync_method',
  'commit_delay',
  'max_wal_size',
];

export async function describeMachine(client: pg.Client): Promise<MachineInfo> {
  const cpuinfo = await fs.readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const { rows } = await client.query<{ name: string; setting: string }>(
    `select name, current_setting(name) as setting from unnest($1::text[]) name`,
    [['server_version', ...SETTINGS]],
  );
  const settings = Object.fromEntries(rows.map((row) => [row.name, row.setting]));
  const { server_version: version = '', ...postgresSettings } = settings;
  return {
    cpuModel: model.trim(),
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: version,
    postgresSettings,
  };
}

/** The postmaster of the server `client` is connected to: the parent of its backend. */
export async function postmasterPid(client: pg.Client): Promise<number | undefined> {
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  const pid = rows[0]?.pid;
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // A server on another machine (or in a container) is not ours to watch.
  if (!stat) return undefined;
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * Transactions committed in the current database so far (the service writes each batch of pings
 * in one). Backends report their counts about once a second, so a difference over a run of
 * steady load is right to about a second's worth.
 */
export async function commits(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    'select xact_commit::text as n from pg_stat_database where datname = current_database()',
  );
  return Number(rows[0]?.n ?? 0);
}
