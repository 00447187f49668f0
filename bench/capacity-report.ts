import fs from 'node:fs/promises';
import path from 'node:path';
import type { WriteRun } from './capacity-load.js';
import {
  load,
  type MeasuredCosts,
  maxUsers,
  PINGS_PER_INSTANCE,
  serialSection,
} from './capacity-model.js';
import type { SweepResult } from './capacity-sweep.js';
import { CORES } from './cpu.js';
import type { FillResult } from './fill.js';
import type { MachineInfo } from './machine.js';
import { ROOT } from './process.js';

// The capacity benchmark's results (JSON under bench/results/) and its printed table: the
// measured costs, then the model applied to them for a range of populations.

export interface CapacityResults {
  benchmark: 'capacity';
  mode: 'full' | 'quick';
  startedAt: string;
  totalS: number;
  error?: string;
  busyBeforeStart: number;
  loadAverage: { atStart: number[]; atEnd: number[] };
  machine?: MachineInfo;
  database?: { kind: string; name: string };
  phasesS: Record<string, number>;
  fills: FillResult[];
  /** At the first table size. */
  heartbeats: WriteRun[];
  changes: WriteRun[];
  ceilings: (WriteRun & { label: string; syncOff: boolean })[];
  sweeps: SweepResult[];
  /** 100 rows per statement at the large table size (full mode). */
  largeHeartbeats?: WriteRun & { users: number };
}

/** The model's inputs, from the runs. Heartbeats are priced at the larger table's cost. */
export function costsOf(r: CapacityResults, flushMs?: number): MeasuredCosts | undefined {
  const hb100 = r.heartbeats.find((h) => h.rowsPerStatement === 100);
  const growth =
    hb100 && r.largeHeartbeats ? Math.max(1, r.largeHeartbeats.cpuUsPerRow / hb100.cpuUsPerRow) : 1;
  const heartbeat = new Map(r.heartbeats.map((h) => [h.rowsPerStatement, h.cpuUsPerRow * growth]));
  const changeExtra = new Map<number, number>();
  const instancePerCommit = new Map<number, number>();
  for (const c of r.changes) {
    const hb = r.heartbeats.find((h) => h.rowsPerStatement === c.rowsPerStatement);
    if (hb) changeExtra.set(c.rowsPerStatement, c.cpuUsPerRow - hb.cpuUsPerRow);
    instancePerCommit.set(c.rowsPerStatement, c.instanceUsPerCommit ?? 0);
  }
  const sweep = r.sweeps.at(-1);
  const sixteen = r.ceilings.filter((c) => c.changes && c.clients > 1 && !c.syncOff);
  const one = sixteen.find((c) => c.rowsPerStatement === 1);
  const many = sixteen.find((c) => c.rowsPerStatement > 1);
  if (!heartbeat.size || !changeExtra.size || !sweep || !one || !many) return undefined;
  // Without others on the machine: the WAL flush as measured here (the 16 writers' commits one
  // after the other with synchronous_commit on, less the same with it off), plus the extra CPU
  // of a commit carrying one change; per change, its extra CPU in commits of the most changes.
  // Both CPU terms are upper bounds on the work done under the lock.
  const off = r.ceilings.find(
    (c) => c.changes && c.clients > 1 && c.syncOff && c.rowsPerStatement === 1,
  );
  const biggest = Math.max(...changeExtra.keys());
  const measuredFlushS = off ? Math.max(0, 1 / one.commitsPerSecond - 1 / off.commitsPerSecond) : 0;
  const flushS = flushMs === undefined ? measuredFlushS : flushMs / 1000;
  return {
    heartbeat,
    changeExtra,
    instancePerCommit,
    sweepPerUser: (sweep.idleCpuMs * 1000) / sweep.users,
    serial: serialSection(one.commitsPerSecond, {
      k: many.rowsPerStatement,
      commitsPerSecond: many.commitsPerSecond,
    }),
    quietSerial: {
      flushS,
      perCommitS: flushS + (changeExtra.get(1) ?? 0) / 1e6,
      perChangeS: (changeExtra.get(biggest) ?? 0) / 1e6,
    },
  };
}

const fmt = (v: number, digits = 0) =>
  v.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const users = (v: number) =>
  v >= 1e6 ? `${fmt(v / 1e6, v % 1e6 ? 1 : 0)}M` : `${fmt(v / 1e3, 0)}k`;

export const SCENARIO_USERS = [100_000, 1_000_000, 3_000_000, 10_000_000];
export const SCENARIO_RATES = [
  { intervalS: 30, changeShare: 0.01 },
  { intervalS: 30, changeShare: 0.1 },
  { intervalS: 60, changeShare: 0.01 },
];

/** `flushMs`: the target's WAL flush (pg_test_fsync) for the 16-core columns, else this one's. */
export function formatCapacity(r: CapacityResults, flushMs?: number): string {
  const m = r.machine;
  const lines = [
    m
      ? `${m.cpuModel}, ${m.cores} cores; PostgreSQL ${m.postgres} (${r.database?.kind}), shared_buffers ${m.postgresSettings.shared_buffers}, synchronous_commit ${m.postgresSettings.synchronous_commit}`
      : '',
    `CPU busy before start ${r.busyBeforeStart}% of ${CORES * 100}%; load average ${r.loadAverage.atStart.join(' ')} -> ${r.loadAverage.atEnd.join(' ')}; ${r.mode} run, ${r.totalS} s${r.error ? '; FAILED' : ''}`,
    '',
    'PostgreSQL CPU per operation (all server processes of this database, /proc/<pid>/schedstat)',
  ];
  const first = r.fills[0]?.users ?? 0;
  for (const h of r.heartbeats)
    lines.push(
      `  heartbeat, ${h.rowsPerStatement} per statement, ${users(first)} users: ${fmt(h.cpuUsPerRow, 1)} µs/row (${fmt(h.cpuUsPerStatement)} µs/statement; ${fmt(h.rowsPerSecond)} rows/s)`,
    );
  const big = r.largeHeartbeats;
  if (big)
    lines.push(
      `  heartbeat, 100 per statement, ${users(big.users)} users: ${fmt(big.cpuUsPerRow, 1)} µs/row (${fmt(big.rowsPerSecond)} rows/s)`,
    );
  for (const c of r.changes) {
    const hb = r.heartbeats.find((h) => h.rowsPerStatement === c.rowsPerStatement);
    const extra = hb ? `, +${fmt(c.cpuUsPerRow - hb.cpuUsPerRow, 1)} over a heartbeat` : '';
    lines.push(
      `  status change, ${c.rowsPerStatement} per commit: ${fmt(c.cpuUsPerRow, 1)} µs/change${extra}; one listening instance: ${fmt(c.instanceUsPerCommit ?? 0, 1)} µs per notifying commit`,
    );
  }
  for (const s of r.sweeps)
    lines.push(
      `  sweep, ${users(s.users)} users: nobody due ${fmt(s.idleCpuMs, 1)} ms CPU (${fmt(s.idleWallMs, 1)} ms wall, ${fmt((s.idleCpuMs * 1e6) / s.users, 0)} ns/user); ${fmt(s.swept)} due ${fmt(s.dueCpuMs, 1)} ms CPU (${fmt(s.dueWallMs, 1)} ms wall), ${fmt(s.cpuUsPerSweptUser, 1)} µs per user swept`,
    );
  lines.push(
    '',
    'Commit order: 16 writers at once (or 1 alone), wall-clock rates (others on the machine slow them)',
  );
  for (const c of r.ceilings)
    lines.push(
      `  ${c.label}: ${fmt(c.commitsPerSecond)} commits/s (one every ${fmt(1000 / c.commitsPerSecond, 2)} ms), ${fmt(c.rowsPerSecond)} rows/s, ${fmt(c.cpuUsPerStatement)} µs CPU/commit`,
    );
  const costs = costsOf(r, flushMs);
  if (!costs) return lines.join('\n');
  const quiet = costs.quietSerial ?? costs.serial;
  const serial = (t: MeasuredCosts['serial']) =>
    `${fmt(t.perCommitS * 1e3, 2)} ms per notifying commit + ${fmt(t.perChangeS * 1e3, 3)} ms per change`;
  lines.push(
    '',
    `The model (docs/scaling.md): b pings per statement; commit order from the 16-writer runs; instances = pings/s / ${fmt(PINGS_PER_INSTANCE)}, at least 2, each sweeping every second and reading every notifying commit`,
    '| users | ping every | changes | pings/s | changes/s | instances | notifying commits/s (b=10) | cores (b=10) | cores (b=100) | commit order busy (b=10) | first limit here (b=10) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const u of SCENARIO_USERS)
    for (const rate of SCENARIO_RATES) {
      const l = load({ users: u, ...rate }, costs);
      const cpu = l.cores(10) / CORES;
      const commits = l.commitOrder(10);
      const first = cpu >= commits ? 'CPU' : 'commit order';
      const over = Math.max(cpu, commits);
      const verdict =
        over > 1 ? `${first}, ${fmt(over, 1)}x over` : `${first} (${fmt(over * 100)}%)`;
      lines.push(
        `| ${users(u)} | ${rate.intervalS} s | ${rate.changeShare * 100}% | ${fmt(l.pings)} | ${fmt(l.changes)} | ${l.instances} | ${fmt(l.notifying(10))} | ${fmt(l.cores(10), 2)} | ${fmt(l.cores(100), 2)} | ${fmt(commits * 100)}% | ${verdict} |`,
      );
    }
  lines.push(
    '',
    `Users one primary carries at saturation: CPU, or the commit order busy all the time (${serial(costs.serial)} from the 16-writer runs on ${CORES} cores;`,
    `16 cores: the CPU costs above per core; the commit order as the WAL flush (${fmt((costs.quietSerial?.flushS ?? 0) * 1e3, 2)} ms: ${flushMs === undefined ? 'here, 16 writers, on less off' : 'given by --flush-ms'}) + a change's extra CPU, ${serial(quiet)})`,
    `| ping every | changes | ${CORES} cores, b=10 | ${CORES} cores, b=100 | 16 cores, b=10 | 16 cores, b=100 |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const rate of SCENARIO_RATES) {
    const cell = (cores: number, b: number) => {
      const max = maxUsers(rate, cores > CORES ? { ...costs, serial: quiet } : costs, cores, b);
      return `${users(max.users)} (${max.limit})`;
    };
    lines.push(
      `| ${rate.intervalS} s | ${rate.changeShare * 100}% | ${cell(CORES, 10)} | ${cell(CORES, 100)} | ${cell(16, 10)} | ${cell(16, 100)} |`,
    );
  }
  return lines.join('\n');
}

/** bench/results/capacity-<mode>-<time>.json; answers its path. */
export async function writeCapacityResults(r: CapacityResults): Promise<string> {
  const dir = path.join(ROOT, 'bench', 'results');
  await fs.mkdir(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const file = path.join(dir, `capacity-${r.mode}-${stamp}.json`);
  await fs.writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}
