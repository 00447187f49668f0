import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startCeilingServer } from './ceiling-server.js';
import type { CpuShare, CpuTargets } from './cpu.js';
import { onInterrupt } from './database.js';
import { fillUsers } from './fill.js';
import { type HttpLoadResult, runHttpLoad } from './http-load.js';
import { commits } from './machine.js';
import { cleanUpAll, onCleanup, ROOT } from './process.js';
import { buildService, type ServiceBuild, startService } from './service.js';
import { setUpDatabase } from './setup.js';
import { round } from './stats.js';

// `npx tsx bench/ping-cpu.ts`: the service's CPU per HTTP ping against the stack's CPU per
// constant answer (the ceiling server), at each table size, several rounds, each round running
// the ceiling and then every build in turn, so that all of them share the machine's conditions.
// With `--base <commit>`, that commit's src/ is built too and measured beside the work tree's;
// with `--profile <dir>`, each build also runs once more under `node --cpu-prof` at each size
// (not measured: the profiler costs CPU). See docs/performance.md, "Where a ping's microseconds go".

const USAGE = `npx tsx bench/ping-cpu.ts [--base <commit>] [--users 1000,100000,1000000]
  [--seconds 10] [--rounds 3] [--profile <dir>]`;

const log = (line: string) => process.stderr.write(`${line}\n`);
const exec = promisify(execFile);

interface Measured {
  rps: number;
  /** CPU time per operation, µs: the server's (service or ceiling), of it in the kernel, PostgreSQL's. */
  service: number;
  kernel: number;
  postgres: number;
  cpu: CpuShare;
}

/** User and system CPU time of one process so far, in µs (/proc/<pid>/stat, clock ticks). */
async function processTimes(pid: number): Promise<{ user: number; system: number }> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 };
}

/**
 * A warm-up, then `durationS` of load measured: the server process's own CPU time per answer
 * (from /proc before and after), and PostgreSQL's from the sampler.
 */
async function measureLoad(options: {
  url: string;
  pid: number;
  users: number;
  durationS: number;
  cpu: CpuTargets;
}): Promise<Measured & { run: HttpLoadResult }> {
  const { url, pid, users, durationS } = options;
  const start = () => Math.floor(Math.random() * users);
  await runHttpLoad({ url, connections: CONNECTIONS, users, durationS: WARMUP_S, start: start() });
  const before = await processTimes(pid);
  const run = await runHttpLoad({
    url,
    connections: CONNECTIONS,
    users,
    durationS,
    start: start(),
    cpu: options.cpu,
  });
  const after = await processTimes(pid);
  if (!run.cpu || run.requests === 0) throw new Error(`${url}: nothing measured`);
  const per = (us: number) => round(us / run.requests, 1);
  const user = after.user - before.user;
  const system = after.system - before.system;
  return {
    rps: run.rps,
    service: per(user + system),
    kernel: per(system),
    postgres: round(((run.cpu.postgres / 100) * run.durationS * 1e6) / run.requests, 1),
    cpu: run.cpu,
    run,
  };
}

const describe = (m: Measured) =>
  `${m.service} µs (kernel ${m.kernel}), ${m.rps}/s, postgres ${m.postgres} µs, other ${m.cpu.other}%, idle ${m.cpu.idle}%`;

const CONNECTIONS = 64;
const WARMUP_S = 3;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

/** The src/ of `commit`, built as the benchmark builds the work tree's. */
async function buildCommit(commit: string): Promise<ServiceBuild> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'presently-base-'));
  onCleanup(() => fs.rm(dir, { recursive: true, force: true }));
  const archive = path.join(dir, 'src.tar');
  await exec('git', ['archive', '-o', archive, commit, 'src', 'migrations', 'package.json'], {
    cwd: ROOT,
  });
  await exec('tar', ['-xf', archive, '-C', dir]);
  const { stdout } = await exec('git', ['rev-parse', '--short', commit], { cwd: ROOT });
  return buildService(dir, stdout.trim());
}

async function main() {
  const { values } = parseArgs({
    options: {
      base: { type: 'string' },
      users: { type: 'string', default: '1000,100000,1000000' },
      seconds: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void process.stdout.write(`${USAGE}\n`);
  const sizes = values.users.split(',').map(Number);
  const durationS = Number(values.seconds);
  const rounds = Number(values.rounds);

  const work = await buildService();
  const builds: ServiceBuild[] = values.base ? [await buildCommit(values.base), work] : [work];
  const label = (b: ServiceBuild) =>
    b === work ? `work tree (${b.commit.slice(0, 7)}${b.uncommitted.length ? '+' : ''})` : b.commit;
  const { scratch, db, cpu, machine } = await setUpDatabase({ log });
  const start = (build: ServiceBuild, nodeArgs: string[] = []) =>
    startService({ build, databaseUrl: scratch.url, awayTimeoutSeconds: 3_600, nodeArgs });
  await (await start(work)).stop(); // migrates

  const results: Record<string, unknown>[] = [];
  let users = 0;
  for (const size of sizes) {
    log(`fill to ${size} users`);
    await fillUsers(db, users + 1, size, { timeoutS: 600, url: scratch.url });
    users = size;
    const runs: Record<string, (Measured & { run: HttpLoadResult })[]> = { ceiling: [] };
    for (let turn = 1; turn <= rounds; turn++) {
      const ceiling = await startCeilingServer();
      const c = await measureLoad({
        url: ceiling.url,
        pid: ceiling.pid,
        users: 1_000,
        durationS,
        cpu: { ...cpu, servicePid: ceiling.pid },
      });
      await ceiling.stop();
      runs.ceiling?.push(c);
      log(`  ${size} users, round ${turn}: ceiling ${describe(c)}`);
      for (const build of builds) {
        const service = await start(build);
        const before = await commits(db);
        const m = await measureLoad({
          url: service.url,
          pid: service.pid,
          users,
          durationS,
          cpu: { ...cpu, servicePid: service.pid },
        });
        const perCommit = round(m.run.requests / Math.max(1, (await commits(db)) - before), 1);
        await service.stop();
        runs[label(build)] = [...(runs[label(build)] ?? []), m];
        log(
          `  ${size} users, round ${turn}: ${label(build)} ${describe(m)}, ~${perCommit} pings/commit`,
        );
      }
    }
    const ceiling = median((runs.ceiling ?? []).map((m) => m.service));
    for (const [name, list] of Object.entries(runs)) {
      const service = median(list.map((m) => m.service));
      const line = `${size} users: ${name.padEnd(28)} median ${service} µs per op (runs ${list.map((m) => m.service).join(', ')}), ${round(service / ceiling, 2)} × the constant answer; rps ${list.map((m) => m.rps).join(', ')}`;
      process.stdout.write(`${line}\n`);
    }
    results.push({
      users,
      runs: Object.fromEntries(
        Object.entries(runs).map(([k, list]) => [k, list.map(({ run: _, ...m }) => m)]),
      ),
    });
    if (values.profile) {
      for (const build of builds) {
        const dir = path.resolve(values.profile, `${label(build).replace(/\W+/g, '-')}-${size}`);
        const service = await start(build, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
        await runHttpLoad({
          url: service.url,
          connections: CONNECTIONS,
          users,
          durationS: WARMUP_S + durationS,
        });
        await service.stop();
        log(`  profile: ${dir}`);
      }
    }
  }
  const file = path.join(
    ROOT,
    'bench',
    'results',
    `ping-cpu-${new Date().toISOString().replace(/[:.]/g, '')}.json`,
  );
  await fs.writeFile(
    file,
    JSON.stringify({ machine, loadAverage: os.loadavg(), results }, null, 2),
  );
  log(`results: ${file}`);
}

const removeHandlers = onInterrupt(() => cleanUpAll(log), log);
main()
  .catch((error: Error) => {
    log(error.stack ?? error.message);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanUpAll(log);
    removeHandlers();
  });
