import fs from 'node:fs/promises';
import path from 'node:path';
import type { BulkLoadResult } from './bulk.js';
import { type CpuShare, formatCpu } from './cpu.js';
import type { FanoutResult } from './fanout.js';
import type { FillResult } from './fill.js';
import type { HttpLoadResult, PingRun } from './http-load.js';
import type { ListReadResult } from './list.js';
import type { MachineInfo } from './machine.js';
import type { MemoryResult } from './memory.js';
import type { BenchMode } from './options.js';
import type { PgbenchRun, PgbenchSeries } from './pgbench.js';
import { ROOT } from './process.js';
import type { SessionsPoint } from './sessions.js';
import type { SioPingResult } from './sio-socket-load.js';
import type { SocketLoadResult } from './socket-load.js';
import type { EveryoneSteadyResult, WatchFanoutResult } from './subscriptions.js';

// The results: a table on stdout, JSON under bench/results/.

/** One of the issues' targets, judged on a run's results (targets.ts). */
export interface Target {
  name: string;
  pass: boolean;
  measured: string;
}

export interface ScalePoint {
  users: number;
  /** Adding the users since the previous point, in one statement through the triggers. */
  fill: FillResult;
  http: PingRun;
}

export interface BenchResults {
  benchmark: 'service';
  mode: BenchMode;
  startedAt: string;
  finishedAt: string;
  totalS: number;
  /** Set when a step failed: the results hold what was measured before it. */
  error?: string;
  loadAverage: { atStart: number[]; atEnd: number[] };
  /** Percent of a core busy (all cores: 100 x cores) over 1 s before the benchmark started. */
  busyBeforeStart: number;
  machine?: MachineInfo;
  database?: { kind: 'DATABASE_URL' | 'embedded'; name: string };
  /** The build measured: its commit, and files of src/ and migrations/ changed from it. */
  service?: { commit: string; uncommitted: string[] };
  /** How long each step took, in order. */
  phasesS: Record<string, number>;
  ceilings: { http?: HttpLoadResult; pgbench?: { single: PgbenchSeries; batch: PgbenchSeries } };
  memory?: MemoryResult;
  fanout?: FanoutResult;
  socket?: SocketLoadResult & { users: number };
  /** The Socket.IO rows (socket.io-client, WebSocket transport), beside the /ws ones. */
  socketio?: {
    memory?: MemoryResult;
    fanout?: FanoutResult;
    /** Without acknowledgements, then with. */
    pings: (SioPingResult & { users: number })[];
  };
  scale: ScalePoint[];
  mixed?: PingRun & { restoredUsers: number };
  /** The whole list read once at the largest table size. */
  list?: ListReadResult;
  /** Sockets following lists of users, while some of those users change at a steady rate. */
  watchFanout?: WatchFanoutResult;
  /** Sockets following everyone while one user changes at a steady rate. */
  everyone?: EveryoneSteadyResult;
  /** The fills of a --subscriptions or --socketio run (the full run's are in `scale`). */
  subscriptionFills?: FillResult[];
  /** The fill statement that ran out of time (the scale points from there on are missing). */
  fillTooSlow?: { users: number; added: number; overS: number };
  /** Bulk pings and workers (--bulk), at the main table size. */
  bulk?: {
    users: number;
    single: PingRun;
    bulk: BulkLoadResult;
    workers2: { single: PingRun; bulk: BulkLoadResult };
  };
  /** Users of two named sessions each (--sessions), smallest first. */
  sessions?: SessionsPoint[];
  serviceWarnings: string[];
  targets: Target[];
}

export function formatTable(r: BenchResults): string {
  const rows: [string, string, string][] = [];
  const http = (label: string, h: HttpLoadResult | undefined, extra = '') => {
    if (!h) return;
    const failures = h.errors + h.non2xx;
    rows.push([
      label,
      `${fmt(h.rps)}/s`,
      `p50 ${h.latencyMs.p50} ms, p99 ${h.latencyMs.p99} ms${failures ? `, ${failures} failed` : ''}${extra}`,
    ]);
    cpuRow(h.cpu, h.rps);
  };
  /** The CPU split, and with a rate, CPU time per operation (steadier than rates on a busy machine). */
  const cpuRow = (cpu: CpuShare | undefined, rate?: number) => {
    if (!cpu) return;
    const per = (share: number) => `${Math.round((share / 100 / (rate ?? 1)) * 1e6)}`;
    const each = rate
      ? `; per op: service ${per(cpu.service)} µs, postgres ${per(cpu.postgres)} µs`
      : '';
    rows.push(['', '', `${formatCpu(cpu)}${each}${cpu.other > BUSY ? '  << busy machine' : ''}`]);
  };
  const pg = (label: string, s: PgbenchSeries | undefined) => {
    if (!s) return;
    const b: PgbenchRun = s.best;
    const probes = s.probes.map((p) => `${p.clients}c ${fmt(p.rowsPerSecond)}`).join(', ');
    rows.push([
      label,
      `${fmt(b.rowsPerSecond)} rows/s`,
      `${b.clients} clients, ${fmt(b.tps)} stmt/s, avg ${b.latencyMs} ms (probes: ${probes})`,
    ]);
    cpuRow(b.cpu, b.rowsPerSecond);
  };
  http(`HTTP ceiling (constant JSON), ${r.ceilings.http?.connections} conn`, r.ceilings.http);
  pg('DB ceiling: pgbench upsert, 1 row', r.ceilings.pgbench?.single);
  pg('DB ceiling: pgbench upsert, 100 rows', r.ceilings.pgbench?.batch);
  for (const p of r.scale) {
    http(`HTTP ping, heartbeats, ${fmt(p.users)} users`, p.http, perCommit(p.http));
  }
  if (r.mixed)
    http(
      `HTTP ping, mixed (~${Math.round(((r.mixed.changes ?? 0) / r.mixed.requests) * 100)}% change status), ${fmt(r.mixed.users)} users`,
      r.mixed,
      perCommit(r.mixed),
    );
  if (r.bulk) {
    const b = r.bulk;
    const bulkRow = (label: string, x: BulkLoadResult) => {
      const failures = x.errors + x.non2xx;
      rows.push([
        label,
        `${fmt(x.pingsPerSecond)} pings/s`,
        `${x.connections} conn, ${fmt(x.requests)} requests, p50 ${x.latencyMs.p50} ms, p99 ${x.latencyMs.p99} ms${failures ? `, ${failures} failed` : ''}`,
      ]);
      cpuRow(x.cpu, x.pingsPerSecond);
    };
    http(`HTTP ping, WORKERS=1, ${fmt(b.users)} users`, b.single, perCommit(b.single));
    bulkRow(`HTTP bulk ping (${fmt(b.bulk.pingsPerRequest)}/request), WORKERS=1`, b.bulk);
    http(
      `HTTP ping, WORKERS=2, ${fmt(b.users)} users`,
      b.workers2.single,
      perCommit(b.workers2.single),
    );
    bulkRow(`HTTP bulk ping (${fmt(b.bulk.pingsPerRequest)}/request), WORKERS=2`, b.workers2.bulk);
  }
  for (const p of r.sessions ?? []) {
    const w = p.sweeps;
    const sessions = `${fmt(p.users)} users x 2 sessions`;
    http(
      `HTTP ping, named-session heartbeats, ${sessions}`,
      p.heartbeats,
      `${perCommit(p.heartbeats)}, ${p.hotPercent}% of session updates HOT`,
    );
    rows.push([
      `away sweep, ${sessions}`,
      `${w.idleMs} ms`,
      `nobody due (median of 5); ${w.dueMs} ms with 1% due (${fmt(w.ended)} sessions ended)`,
    ]);
  }
  if (r.socket) {
    const s = r.socket;
    rows.push([
      `socket ping, ${s.sockets} sockets, ${fmt(s.users)} users`,
      `${fmt(s.framesPerSecond)}/s`,
      `bursts of ${s.burst} + 1 marker change; ${fmt(s.changesPerSecond)} changes/s; error frames: ${JSON.stringify(s.errors)}; received ${s.received.megabytes} MiB`,
    ]);
    cpuRow(s.cpu, s.framesPerSecond);
  }
  for (const p of r.socketio?.pings ?? []) {
    const acks = p.ackMs
      ? `${p.burst} in flight per socket, acknowledged p50 ${p.ackMs.p50} ms, p99 ${p.ackMs.p99} ms`
      : `bursts of ${p.burst} + 1 marker change; ${fmt(p.changesPerSecond)} changes/s`;
    rows.push([
      `Socket.IO ping, ${p.mode === 'ack' ? 'acknowledged' : 'no ack'}, ${p.sockets} sockets, ${fmt(p.users)} users`,
      `${fmt(p.framesPerSecond)}/s`,
      `${acks}; errors: ${JSON.stringify(p.errors)}; closed ${p.closed}; received ${p.received.megabytes} MiB`,
    ]);
    cpuRow(p.cpu, p.framesPerSecond);
  }
  const fanout = (label: string, f: FanoutResult | undefined) => {
    if (!f) return;
    rows.push([
      `${label} to ${fmt(f.sockets)} sockets, ${f.changes} changes`,
      `p50 ${f.deliveryMs.p50} ms, p99 ${f.deliveryMs.p99} ms`,
      `max ${f.deliveryMs.max} ms; first socket p50 ${f.firstSocketMs.p50} ms, last socket p50 ${f.lastSocketMs.p50} ms; ping answered p50 ${f.pingAnswerMs.p50} ms; missing ${f.missing}`,
    ]);
    cpuRow(f.cpu);
  };
  fanout('fan-out', r.fanout);
  fanout('Socket.IO fan-out', r.socketio?.fanout);
  const memory = (label: string, m: MemoryResult | undefined) => {
    if (!m) return;
    rows.push([
      `${label}, ${fmt(m.sockets)} idle sockets`,
      `${m.kibPerSocket} KiB/socket`,
      `RSS ${mib(m.rssBeforeKiB)} -> ${mib(m.rssAfterKiB)} MiB (${mib(m.rssAfterCloseKiB)} after closing)`,
    ]);
    cpuRow(m.cpu);
  };
  memory('memory', r.memory);
  memory('Socket.IO memory', r.socketio?.memory);
  if (r.list) {
    const l = r.list;
    rows.push([
      `GET /users/list/all, ${fmt(l.users)} users`,
      `${(l.lastByteMs / 1000).toFixed(1)} s`,
      `to the last byte (first byte ${l.firstByteMs} ms), ${l.megabytes} MiB; service RSS ${mib(l.rssBeforeKiB)} -> peak ${mib(l.rssPeakKiB)} MiB (+${mib(l.rssGrowthKiB)} MiB; peak over a second read ${mib(l.rssPeakSecondReadKiB)} MiB; ${l.rssSamples} samples)`,
    ]);
  }
  if (r.watchFanout) {
    const w = r.watchFanout;
    rows.push([
      `watch-list fan-out, ${fmt(w.sockets)} sockets x ${w.perSocket} users, ${fmt(w.users)} users`,
      `p50 ${w.deliveryMs.p50} ms, p99 ${w.deliveryMs.p99} ms`,
      `max ${w.deliveryMs.max} ms; ${w.changesPerSecond} changes/s for ${w.durationS} s among ${fmt(w.changingUsers)} users (${w.followers.min}-${w.followers.max} followers each); last follower p50 ${w.lastFollowerMs.p50} ms; ping answered p50 ${w.pingAnsweredMs?.p50} ms, p99 ${w.pingAnsweredMs?.p99} ms`,
    ]);
    rows.push([
      '',
      '',
      `delivered ${fmt(w.delivered)} of ${fmt(w.expected)} (missing ${fmt(w.missing)}); not followed ${w.foreign}, unexpected ${w.unexpected}, wrong status ${w.wrongStatus}; closed ${JSON.stringify(w.closed)}; pings not answered 2xx ${JSON.stringify(w.failedPings)}, last answered at ${w.answeredS} s; received ${fmt(w.frames.change)} changes, ${fmt(w.frames.list)} lists, ${fmt(w.frames.count)} counts, ${w.megabytes} MiB; connect ${w.connectS} s`,
    ]);
    cpuRow(w.cpu);
    rows.push([
      '',
      '',
      `per delivered presence-change: service ${w.serviceUsPerFrame} µs, postgres ${w.postgresUsPerFrame} µs (all of the service's work over ${w.cpuSeconds} s, snapshots included)${lagText(w.eventLoopLagMs)}; client event-loop delay p99 ${w.clientLagMs.p99} ms, max ${w.clientLagMs.max} ms`,
    ]);
  }
  if (r.everyone) {
    const e = r.everyone;
    const final =
      e.finalListAfterS === null
        ? `${e.finalListSockets} of ${e.sockets} sockets' last list final after ${e.settleS} s`
        : `every last list final ${e.finalListAfterS} s after the changes`;
    rows.push([
      `everyone-followers, ${e.sockets} sockets, a change every ${e.periodMs} ms, ${fmt(e.users)} users`,
      `${fmt(e.bytesPerSecondPerSocket / 1024)} KiB/s/socket`,
      `${e.changes} changes in ${e.durationS} s; lists per socket ${e.listsPerSocket.min}-${e.listsPerSocket.max} (mean ${e.listsPerSocket.mean}); closed ${JSON.stringify(e.closed)}; ${final}; change p99 ${e.deliveryMs.p99} ms, missing ${e.missing}; pings not answered 2xx ${JSON.stringify(e.failedPings)}${lagText(e.eventLoopLagMs)}; client event-loop delay max ${e.clientLagMs.max} ms`,
    ]);
    cpuRow(e.cpu);
  }
  for (const f of r.subscriptionFills ?? []) {
    rows.push([
      `fill to ${fmt(f.users)} users`,
      `${(f.ms / 1000).toFixed(1)} s`,
      `+${fmt(f.added)} rows in one statement through the triggers, ${fmt(f.rowsPerSecond)} rows/s`,
    ]);
  }
  for (const { fill: f } of r.scale) {
    const vacuum = `VACUUM ANALYZE ${(f.vacuumAnalyzeMs / 1000).toFixed(1)} s`;
    const rate = `${fmt(f.rowsPerSecond)} rows/s, ${vacuum}`;
    rows.push([
      `fill to ${fmt(f.users)} users`,
      `${(f.ms / 1000).toFixed(1)} s`,
      `+${fmt(f.added)} rows in one statement through the triggers, ${rate}`,
    ]);
  }
  if (r.fillTooSlow) {
    const f = r.fillTooSlow;
    rows.push([
      `fill to ${fmt(f.users)} users`,
      `> ${f.overS} s`,
      `+${fmt(f.added)} rows in one statement: cancelled, larger scale points skipped`,
    ]);
  }
  const width = [0, 1].map((i) => Math.max(...rows.map((row) => row[i]?.length ?? 0)));
  const lines = rows.map(
    ([a, b, c]) => `${a.padEnd(width[0] ?? 0)}  ${b.padStart(width[1] ?? 0)}  ${c}`,
  );
  const m = r.machine;
  const s = r.service;
  const header = [
    m
      ? `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node}; PostgreSQL ${m.postgres} (${r.database?.kind})`
      : '',
    s
      ? `service at ${s.commit.slice(0, 10)}${s.uncommitted.length ? ` + ${s.uncommitted.length} uncommitted files in src/, migrations/` : ''}`
      : '',
    `CPU busy before start ${r.busyBeforeStart}% of ${(r.machine?.cores ?? 0) * 100}%; load average at start ${r.loadAverage.atStart.join(' ')}, at end ${r.loadAverage.atEnd.join(' ')}; ${r.mode} run, ${r.totalS} s${r.error ? '; FAILED (see error in the JSON)' : ''}`,
    '',
  ].filter((line, i) => line || i === 3);
  lines.push('', ...r.targets.map((t) => `${t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.measured}`));
  return [...header, ...lines].join('\n');
}

export async function writeResults(r: BenchResults): Promise<string> {
  const dir = path.join(ROOT, 'bench', 'results');
  await fs.mkdir(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const file = path.join(dir, `bench-${r.mode === 'full' ? '' : `${r.mode}-`}${stamp}.json`);
  const json = `${JSON.stringify(r, null, 2)}\n`;
  await fs.writeFile(file, json);
  await fs.writeFile(
    path.join(dir, r.mode === 'full' ? 'latest.json' : `latest-${r.mode}.json`),
    json,
  );
  return file;
}

/** Percent of a core used by others (and the kernel) past which a row is flagged. */
const BUSY = 25;
const lagText = (lag: { p99: number; max: number } | undefined) =>
  lag ? `; service event-loop delay p99 ${lag.p99} ms, max ${lag.max} ms` : '';
const perCommit = (h: PingRun) => (h.pingsPerCommit ? `, ~${h.pingsPerCommit} pings/commit` : '');
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const mib = (kib: number) => (kib / 1024).toFixed(0);
