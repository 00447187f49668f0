import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { createScratchDatabase, onInterrupt } from '../../bench/database.js';
import { cleanUpAll, onCleanup } from '../../bench/process.js';
import { ACCESS_KEY, ACCESS_KEY_SYSTEM, buildService, startService } from '../../bench/service.js';
import { count5xx, countErrors, createApi, REQUEST_TIMEOUT_S } from './api.js';
import { type CheckResult, type Drain, drained, runCheck } from './check.js';
import { seedUsers, startHttpLoad } from './http-load.js';
import { round, type Sample, startMonitor } from './monitor.js';
import { parseOptions, type SoakOptions } from './options.js';
import { descriptors } from './proc.js';
import { startSocketClients } from './sockets.js';
import { printSummary, type SoakSummary, writeSummary } from './summary.js';
import { judge } from './verdict.js';

// `npm run soak -- --minutes 10`: the service built and started as in production, on a scratch
// database, under mixed HTTP and socket pings with a constant churn of sockets and users timing
// out all the time (AWAY_TIMEOUT_SECONDS=3), sampled every 10 s; a few checks mid-run and one at
// the end compare what the sockets show with the list. Not part of `npm test`.

const log = (line: string) => process.stderr.write(`${line}\n`);

async function soak(options: SoakOptions, summary: SoakSummary): Promise<void> {
  log('building');
  const build = await buildService();
  summary.build = { commit: build.commit, uncommitted: build.uncommitted };
  const scratch = await createScratchDatabase({ databaseUrl: process.env.DATABASE_URL, log });
  onCleanup(() => scratch.drop());
  summary.database = { kind: scratch.kind, name: scratch.name };
  const service = await startService({
    build,
    databaseUrl: scratch.url,
    awayTimeoutSeconds: options.awayTimeoutSeconds,
  });
  summary.serviceWarnings = service.warnings;
  log(`service pid ${service.pid} at ${service.url}, database ${scratch.name} (${scratch.kind})`);

  const api = createApi({ url: service.url, key: ACCESS_KEY, systemKey: ACCESS_KEY_SYSTEM });
  const users = Array.from({ length: options.users }, (_, i) => `u${i + 1}`);
  const httpUsers = users.slice(0, Math.round(users.length * 0.8));
  summary.http = api.counters;
  log(`seeding ${users.length} users, then letting them go away`);
  await seedUsers(api, users);
  await sleep(options.awayTimeoutSeconds * 1000 + 2_500); // their timeouts, before any socket
  const port = Number(new URL(service.url).port);
  const fdsBefore = await descriptors(service.pid, port);

  let aborted: string | undefined;
  const abort = (error: Error) => {
    aborted ??= error.message;
  };
  log(`opening ${options.sockets} sockets from ${options.clientProcesses} processes`);
  const sockets = await startSocketClients(
    {
      wsUrl: service.wsUrl,
      sockets: options.sockets,
      users: users.slice(httpUsers.length),
      pingingShare: options.pingingSocketShare,
      flipShare: options.flipShare,
      lifeS: options.socketLifeS,
      resumeShare: options.resumeShare,
    },
    options.clientProcesses,
    abort,
  );
  const http = startHttpLoad({
    api,
    users: httpUsers,
    loops: options.httpLoops,
    activePerLoop: options.activePerLoop,
    flipShare: options.flipShare,
  });
  onCleanup(() => http.stop());

  let phase: Sample['phase'] = 'load';
  const monitor = await startMonitor({
    pid: service.pid,
    port,
    api,
    clients: () => sockets.stats(),
    clientPids: sockets.pids,
    phase: () => phase,
    intervalS: options.sampleS,
    log,
    onGone: abort,
  });
  summary.samples = monitor.samples;
  const checks: CheckResult[] = [];
  summary.checks = checks;
  const check = async (label: string) => {
    phase = 'check';
    try {
      const deps = { api, sockets, http, log };
      const sample = options.checkSample;
      const { awayTimeoutSeconds } = options;
      checks.push(await runCheck(label, { ...deps, sample, awayTimeoutSeconds }));
    } finally {
      phase = 'load';
    }
  };

  const durationMs = options.minutes * 60_000;
  const began = performance.now();
  const checkAt = Array.from(
    { length: options.checkpoints },
    (_, i) => (durationMs * (i + 1)) / (options.checkpoints + 1),
  );
  log(
    `load for ${options.minutes} min; checks at ${checkAt.map((ms) => `${ms / 1000} s`)} and the end`,
  );
  while (!aborted && performance.now() - began < durationMs) {
    const elapsed = performance.now() - began;
    if (checkAt.length > 0 && elapsed >= (checkAt[0] ?? 0)) {
      checkAt.shift();
      await check(`at ${Math.round(elapsed / 1000)} s`);
      continue;
    }
    await sleep(Math.min(1_000, durationMs - elapsed));
  }
  if (!aborted) await check('at the end');

  await http.stop();
  monitor.stop();
  const last = await sockets.stop();
  summary.sockets = { ...last.churn, connectErrorExamples: last.connectErrorExamples };
  summary.frames = last.frames;
  let drain: Drain | undefined;
  if (!aborted) {
    drain = await drained(api, service.pid, port, fdsBefore, options.fdMargin);
    const { after } = drain;
    log(
      `drained: sockets_open ${drain.socketsOpen}, ${after.total} fds (${fdsBefore.total} before)`,
    );
  }
  summary.drain = drain;

  const { counters } = api;
  const fiveXx = count5xx(counters);
  summary.criteria = judge({
    samples: monitor.samples,
    warmupS: summary.warmupS,
    checks,
    drain,
    http: {
      requests: counters.requests,
      fiveXx,
      failures: counters.failures,
      otherErrors: countErrors(counters) - fiveXx - counters.failures,
    },
    positionViolations: last.frames.positionViolations,
    rssGrowthLimit: options.rssGrowthLimit,
    fdMargin: options.fdMargin,
    requestTimeoutS: REQUEST_TIMEOUT_S,
    minutes: options.minutes,
    aborted,
  });
}

async function main() {
  let options: SoakOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    log(`${(error as Error).message} (--help lists the options)`);
    process.exit(2);
  }
  const seconds = options.minutes * 60;
  const summary: SoakSummary = {
    startedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, loadAverageAtStart: os.loadavg().map((n) => round(n)) },
    options,
    warmupS: Math.round(Math.min(120, Math.max(20, seconds * 0.25))),
  };
  const removeHandlers = onInterrupt(() => cleanUpAll(log), log);
  try {
    await soak(options, summary);
  } catch (error) {
    summary.error = (error as Error).stack ?? String(error);
    log(`soak failed: ${summary.error}`);
  } finally {
    await cleanUpAll(log);
    removeHandlers();
  }
  summary.finishedAt = new Date().toISOString();
  summary.machine.loadAverageAtEnd = os.loadavg().map((n) => round(n));
  const pass =
    !summary.error &&
    (summary.criteria ?? []).every((c) => c.pass || c.skipped) &&
    !!summary.criteria;
  summary.verdict = pass ? 'PASS' : 'FAIL';
  printSummary(summary, log);
  log(`summary: ${await writeSummary(summary)}`);
  process.exit(pass ? 0 : 1);
}

void main();
