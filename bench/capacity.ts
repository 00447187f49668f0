import fs from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { migrate, readMigrations } from '../src/db/migrate.js';
import { runWrites, type WriteRun } from './capacity-load.js';
import { type CapacityResults, formatCapacity, writeCapacityResults } from './capacity-report.js';
import { measureSweep } from './capacity-sweep.js';
import { CORES, startCpuSampler } from './cpu.js';
import { onInterrupt } from './database.js';
import { fillUsers } from './fill.js';
import { cleanUpAll, sleep } from './process.js';
import { setUpDatabase } from './setup.js';
import { phaseClock, round } from './stats.js';

// `npm run bench:capacity`: what one PostgreSQL primary costs per heartbeat, per status change
// and per sweep, and how many notifying commits a second the commit order lets through, measured
// on this machine against the database given (DATABASE_URL, or an embedded server), then the
// capacity model of docs/scaling.md applied to those numbers. CPU is read from /proc for the
// server's processes, so the costs hold when others share the machine; the ceiling is a rate,
// and does not.

interface CapacityOptions {
  mode: 'full' | 'quick';
  /** Users for the write runs and the first sweep. */
  users: number;
  /** Filled up to next: one more heartbeat run and a sweep (full mode). */
  largeUsers?: number | undefined;
  runS: number;
  ceilingS: number;
  heartbeatRows: number[];
  changeRows: number[];
  /** Share of the users a sweep finds due. */
  sweepShare: number;
  idleRuns: number;
  dueRuns: number;
}

const FULL: CapacityOptions = {
  mode: 'full',
  users: 100_000,
  largeUsers: 1_000_000,
  runS: 5,
  ceilingS: 5,
  heartbeatRows: [1, 10, 100, 500],
  changeRows: [1, 10, 100],
  sweepShare: 0.01,
  idleRuns: 5,
  dueRuns: 3,
};
const QUICK: CapacityOptions = {
  ...FULL,
  mode: 'quick',
  largeUsers: undefined,
  runS: 1.5,
  ceilingS: 2,
  idleRuns: 3,
  dueRuns: 1,
};

const log = (line: string) => process.stderr.write(`${line}\n`);
const n = (value: number) => value.toLocaleString('en');

async function measure(options: CapacityOptions, r: CapacityResults) {
  const phase = phaseClock(log);
  r.phasesS = phase.seconds;
  const { scratch, db, cpu, machine } = await phase.run('database', () => setUpDatabase({ log }));
  r.machine = machine;
  r.database = { kind: scratch.kind, name: scratch.name };
  if (!cpu.postmasterPid) {
    throw new Error(
      'the PostgreSQL server is not a process of this machine: its CPU cannot be read',
    );
  }
  const target = { postmasterPid: cpu.postmasterPid, database: scratch.name };
  await phase.run('migrate', async () => {
    await migrate(scratch.url, await readMigrations(), pino({ level: 'warn' }));
    // Nobody goes away during the write runs; the sweep step sets its own timeouts.
    await db.query("update presently.settings set away_timeout = interval '1 hour'");
  });
  const fill = (from: number, to: number) =>
    phase.run(`fill to ${n(to)} users`, () =>
      fillUsers(db, from, to, { timeoutS: 600, url: scratch.url }),
    );
  r.fills.push(await fill(1, options.users));
  const users = { count: options.users, flipped: new Uint8Array(options.users + 1) };
  const write = (rows: number, changes: boolean, clients = 2, settings: string[] = []) =>
    runWrites({
      url: scratch.url,
      target,
      users,
      rows,
      clients,
      durationS: clients === 2 ? options.runS : options.ceilingS,
      changes,
      settings,
    });
  const record = (into: WriteRun[], run: WriteRun, label: string) => {
    into.push(run);
    log(
      `  ${label}: ${round(run.cpuUsPerRow, 1)} µs/row, ${n(Math.round(run.rowsPerSecond))} rows/s`,
    );
  };

  await phase.run('warm-up', () => write(100, false));
  for (const rows of options.heartbeatRows) {
    const run = await phase.run(`heartbeats, ${rows} per statement`, () => write(rows, false));
    record(r.heartbeats, run, `${rows}/statement`);
  }
  for (const rows of options.changeRows) {
    const run = await phase.run(`changes, ${rows} per commit`, () => write(rows, true));
    record(r.changes, run, `${rows}/commit`);
  }
  // The commit order: many writers at once, each commit carrying changes (so taking the log lock
  // and notifying), against the same writers committing heartbeats, which take neither.
  const off = ['set synchronous_commit = off'];
  const ceilings: [string, boolean, () => Promise<WriteRun>][] = [
    ['1 change per commit, synchronous_commit on', false, () => write(1, true, 16)],
    ['1 change per commit, synchronous_commit off', true, () => write(1, true, 16, off)],
    ['100 changes per commit, synchronous_commit on', false, () => write(100, true, 16)],
    ['100 changes per commit, synchronous_commit off', true, () => write(100, true, 16, off)],
    [
      '1 heartbeat per commit (no lock, no NOTIFY), synchronous_commit on',
      false,
      () => write(1, false, 16),
    ],
    [
      '1 heartbeat per commit (no lock, no NOTIFY), synchronous_commit off',
      true,
      () => write(1, false, 16, off),
    ],
    // One writer alone: how long a notifying commit takes with nobody queued on the lock, and
    // how much of it is the WAL flush (the difference between on and off).
    ['1 writer alone, 1 change per commit, synchronous_commit on', false, () => write(1, true, 1)],
    [
      '1 writer alone, 1 change per commit, synchronous_commit off',
      true,
      () => write(1, true, 1, off),
    ],
  ];
  for (const [label, syncOff, run] of ceilings) {
    const result = await phase.run(`ceiling: ${label}`, run);
    r.ceilings.push({ label, syncOff, ...result });
    log(`  ${n(Math.round(result.commitsPerSecond))} commits/s`);
  }
  const sweep = (count: number) =>
    phase.run(`sweeps, ${n(count)} users`, () =>
      measureSweep({
        db,
        target,
        users: count,
        share: options.sweepShare,
        idleRuns: options.idleRuns,
        dueRuns: options.dueRuns,
      }),
    );
  r.sweeps.push(await sweep(options.users));

  if (options.largeUsers) {
    r.fills.push(await fill(options.users + 1, options.largeUsers));
    const large = { count: options.largeUsers, flipped: new Uint8Array(options.largeUsers + 1) };
    large.flipped.set(users.flipped); // users the change runs flipped keep their new status
    const run = await phase.run(`heartbeats, 100 per statement, ${n(large.count)} users`, () =>
      runWrites({
        url: scratch.url,
        target,
        users: large,
        rows: 100,
        clients: 2,
        durationS: options.runS,
        changes: false,
      }),
    );
    r.largeHeartbeats = { users: large.count, ...run };
    r.sweeps.push(await sweep(options.largeUsers));
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      report: { type: 'string' },
      'flush-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.report) {
    // A stored run, printed again through the current model (nothing is measured).
    const stored = JSON.parse(await fs.readFile(values.report, 'utf8')) as CapacityResults;
    const flush = values['flush-ms'] === undefined ? undefined : Number(values['flush-ms']);
    process.stdout.write(`${formatCapacity(stored, flush)}\n`);
    return;
  }
  if (values.help) {
    process.stdout.write(
      'npm run bench:capacity [-- --quick | --report <results.json>]\n' +
        '  --quick   100,000 users only, short runs (under a minute)\n' +
        '  --report  print a stored run again through the current model, measuring nothing\n' +
        '  --flush-ms  with --report: the WAL flush of the 16-core target (pg_test_fsync), in ms\n' +
        'DATABASE_URL: the server to create the scratch database on (default: an embedded server)\n',
    );
    return;
  }
  const options = values.quick ? QUICK : FULL;
  const began = performance.now();
  const removeHandlers = onInterrupt(() => cleanUpAll(log), log);
  const quiet = startCpuSampler({});
  await sleep(1_000);
  const before = await quiet.stop();
  const r: CapacityResults = {
    benchmark: 'capacity',
    mode: options.mode,
    startedAt: new Date().toISOString(),
    totalS: 0,
    busyBeforeStart: Math.round(CORES * 100 - before.idle),
    loadAverage: { atStart: os.loadavg().map((v) => round(v, 2)), atEnd: [] },
    phasesS: {},
    fills: [],
    heartbeats: [],
    changes: [],
    ceilings: [],
    sweeps: [],
  };
  log(
    `capacity benchmark, ${options.mode} (CPU busy before start: ${r.busyBeforeStart}% of ${CORES * 100}%)`,
  );
  try {
    await measure(options, r);
  } catch (error) {
    r.error = (error as Error).stack ?? String(error);
    log(`benchmark failed: ${r.error}`);
    process.exitCode = 1;
  } finally {
    await cleanUpAll(log);
    removeHandlers();
  }
  r.loadAverage.atEnd = os.loadavg().map((v) => round(v, 2));
  r.totalS = round((performance.now() - began) / 1000, 1);
  process.stdout.write(`\n${formatCapacity(r)}\n`);
  const file = await writeCapacityResults(r);
  log(`\nresults: ${file} (${r.totalS} s)`);
}

void main();
