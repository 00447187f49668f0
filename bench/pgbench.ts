import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type CpuShare, type CpuTargets, startCpuSampler } from './cpu.js';
import { run } from './process.js';
import { STRIDE } from './users.js';

// The database ceiling: pgbench running the ping's upsert directly against presently.presence
// (its triggers included), heartbeats of users already in the table: one row per statement, and
// 100 rows per statement through unnest, as presently.ping_many writes a batch (distinct users,
// sorted, so that concurrent batches never deadlock). No count is read: this is the write alone.

const SINGLE = `\\set u random(1, :n)
insert into presently.presence as p (user_id, status, last_ping)
values (:u::text, case when :u::bigint % 2 = 0 then 'available' else 'busy' end, now())
on conflict (user_id) do update set status = excluded.status, last_ping = excluded.last_ping;
`;

const BATCH_ROWS = 100;
const BATCH = `\\set b random(0, :n - 1)
insert into presently.presence as p (user_id, status, last_ping)
select u.id, case when u.id::bigint % 2 = 0 then 'available' else 'busy' end, now()
from unnest(array(
  select (((:b::bigint + g) * ${STRIDE}) % :n + 1)::text collate "C"
  from generate_series(0, ${BATCH_ROWS - 1}) g
  order by 1
)) as u(id)
on conflict (user_id) do update set status = excluded.status, last_ping = excluded.last_ping;
`;

export interface PgbenchRun {
  clients: number;
  threads: number;
  durationS: number;
  /** Statements (transactions) per second. */
  tps: number;
  rowsPerSecond: number;
  latencyMs: number;
  failed: number;
  cpu?: CpuShare;
}

export interface PgbenchSeries {
  rowsPerStatement: number;
  /** The client count with the most rows per second, measured again for the full duration. */
  best: PgbenchRun;
  probes: PgbenchRun[];
}

export function findPgbench(): string {
  const candidates = [
    process.env.PGBENCH,
    '/usr/lib/postgresql/15/bin/pgbench',
    ...(process.env.PATH ?? '').split(':').map((dir) => path.join(dir, 'pgbench')),
  ];
  const found = candidates.find((file) => file && existsSync(file));
  if (!found) throw new Error('pgbench not found (set PGBENCH to its path)');
  return found;
}

export async function runPgbench(options: {
  url: string;
  users: number;
  probeClients: number[];
  probeS: number;
  /** 0: the best probe is the result. */
  mainS: number;
  cpu?: CpuTargets;
}): Promise<{ single: PgbenchSeries; batch: PgbenchSeries }> {
  const pgbench = findPgbench();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-pgbench-'));
  try {
    const series = async (name: string, script: string, rows: number): Promise<PgbenchSeries> => {
      const file = path.join(dir, `${name}.sql`);
      await fs.writeFile(file, script);
      const once = (clients: number, seconds: number) =>
        runOnce(pgbench, options.url, file, options.users, rows, clients, seconds, options.cpu);
      const probes: PgbenchRun[] = [];
      for (const clients of options.probeClients) probes.push(await once(clients, options.probeS));
      const top = probes.reduce((a, b) => (b.rowsPerSecond > a.rowsPerSecond ? b : a));
      const best = options.mainS > 0 ? await once(top.clients, options.mainS) : top;
      return { rowsPerStatement: rows, best, probes };
    };
    const single = await series('single', SINGLE, 1);
    const batch = await series('batch', BATCH, BATCH_ROWS);
    return { single, batch };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function runOnce(
  pgbench: string,
  url: string,
  file: string,
  users: number,
  rows: number,
  clients: number,
  seconds: number,
  cpu: CpuTargets | undefined,
): Promise<PgbenchRun> {
  const threads = Math.min(clients, os.cpus().length);
  const sampler = cpu ? startCpuSampler(cpu) : undefined;
  const args = ['-n', '-M', 'prepared', '-c', String(clients), '-j', String(threads)];
  args.push('-T', String(seconds), '-D', `n=${users}`, '-f', file, url);
  const { stdout } = await run(pgbench, args);
  const share = await sampler?.stop();
  const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? Number.NaN);
  const tps = number(/^tps = ([\d.]+) \(without initial connection time\)/m);
  if (!Number.isFinite(tps)) throw new Error(`could not read pgbench's output:\n${stdout}`);
  return {
    clients,
    threads,
    durationS: seconds,
    tps: Math.round(tps),
    rowsPerSecond: Math.round(tps * rows),
    latencyMs: number(/^latency average = ([\d.]+) ms/m),
    failed: number(/^number of failed transactions: (\d+)/m) || 0,
    ...(share ? { cpu: share } : {}),
  };
}
