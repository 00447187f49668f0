import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { HttpCounters } from './api.js';
import type { CheckResult, Drain } from './check.js';
import { round, type Sample } from './monitor.js';
import type { SoakOptions } from './options.js';
import type { SocketStats } from './sockets.js';
import { type Criterion, median } from './verdict.js';
import type { FrameCounters } from './view.js';

// What a run leaves behind: a few lines on the terminal and the whole record as JSON in /tmp
// (outside the repository, so nothing is left to commit by mistake).

export interface SoakSummary {
  startedAt: string;
  finishedAt?: string;
  machine: { cpus: number; loadAverageAtStart: number[]; loadAverageAtEnd?: number[] };
  options: SoakOptions;
  warmupS: number;
  verdict?: 'PASS' | 'FAIL';
  criteria?: Criterion[];
  error?: string;
  database?: { kind: string; name: string };
  /** The commit built, and the files of src/ and migrations/ that differed from it. */
  build?: { commit: string; uncommitted: string[] };
  http?: HttpCounters;
  sockets?: SocketStats['churn'] & { connectErrorExamples: string[] };
  frames?: FrameCounters;
  checks?: CheckResult[];
  drain?: Drain | undefined;
  samples?: Sample[];
  /** Warn and error lines the service logged. */
  serviceWarnings?: string[];
}

export function printSummary(s: SoakSummary, log: (line: string) => void): void {
  const samples = s.samples ?? [];
  const rss = samples.map((x) => x.rssMiB);
  const lag = samples.map((x) => x.clientLagMs.max);
  const healthz = samples.map((x) => x.healthzMs ?? Number.POSITIVE_INFINITY);
  const churn = s.sockets;
  const frames = s.frames;
  log('');
  const load = (values: number[] | undefined) => values?.join(' ') ?? '?';
  log(
    `soak ${s.options.minutes} min, ${s.options.users} users, ${s.options.sockets} sockets; ` +
      `${s.machine.cpus} CPUs, load average ${load(s.machine.loadAverageAtStart)} at the start, ` +
      `${load(s.machine.loadAverageAtEnd)} at the end`,
  );
  if (s.http) {
    const statuses = [...s.http.byStatus].map(([status, n]) => `${status}: ${n}`).join(', ');
    log(`  http: ${s.http.requests} requests (${statuses}), ${s.http.failures} without answer`);
    for (const line of s.http.serverErrorExamples) log(`    ${line}`);
    for (const line of s.http.failureExamples) log(`    ${line}`);
  }
  if (churn) {
    const closes = [...churn.serverCloses].map(([code, n]) => `${code}: ${n}`).join(', ');
    log(
      `  sockets: ${churn.connects} connects (${churn.resumes} resuming with since), ` +
        `${churn.cleanCloses} clean closes, ${churn.terminates} terminates, ` +
        `closed by the server: ${closes || 'none'}, ${churn.connectErrors} failed connects, ` +
        `${churn.pings} socket pings`,
    );
  }
  if (frames) {
    const errors = [...frames.errors].map(([code, n]) => `${code}: ${n}`).join(', ');
    log(
      `  received: ${frames.snapshots} snapshots, ${frames.changes} changes, ` +
        `${round(frames.bytes / 2 ** 30, 2)} GiB, ${frames.resyncs} resyncs, ` +
        `error frames: ${errors || 'none'}`,
    );
  }
  if (rss.length > 0) {
    log(
      `  service RSS ${Math.min(...rss)}..${Math.max(...rss)} MiB; ` +
        `healthz p50 ${median(healthz)} ms, max ${Math.max(...healthz)} ms; ` +
        `soak event-loop delay max ${Math.max(...lag)} ms`,
    );
  }
  const warnings = s.serviceWarnings ?? [];
  if (warnings.length > 0) {
    log(`  service warnings: ${warnings.length}, first: ${warnings[0]?.slice(0, 300)}`);
  }
  if (s.error) log(`  error: ${s.error.split('\n')[0]}`);
  for (const c of s.criteria ?? []) {
    log(`  ${c.skipped ? 'SKIP' : c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  }
  log(`${s.verdict}`);
}

export async function writeSummary(summary: SoakSummary): Promise<string> {
  const stamp = summary.startedAt.replace(/[:.]/g, '-');
  const file = path.join(os.tmpdir(), `presently-soak-${stamp}.json`);
  const json = JSON.stringify(summary, replacer, 2);
  await fs.writeFile(file, `${json}\n`);
  return file;
}

/** Maps become objects. */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof Map ? Object.fromEntries(value) : value;
}
