import os from 'node:os';
import { benchmarkBulk } from './bulk-run.js';
import { startCeilingServer } from './ceiling-server.js';
import { CORES, type CpuTargets, startCpuSampler } from './cpu.js';
import { onInterrupt } from './database.js';
import { type FillResult, FillTooSlow, fillUsers, restoreHeartbeatStatus } from './fill.js';
import { runCeilingLoad, runPingLoad } from './http-load.js';
import { runListRead } from './list.js';
import { benchmarkList } from './list-run.js';
import { type BenchOptions, parseOptions } from './options.js';
import { runPgbench } from './pgbench.js';
import { prepareRun } from './prepare.js';
import { cleanUpAll, sleep } from './process.js';
import { type BenchResults, formatTable, writeResults } from './report.js';
import { type Service, startService } from './service.js';
import { benchmarkSessions } from './sessions-run.js';
import { benchmarkSockets, measureIdleSockets, measureSocketPings } from './socket-run.js';
import { round } from './stats.js';
import { benchmarkSubscriptions, measureSubscriptions } from './subscriptions-run.js';
import { judge } from './targets.js';

// `npm run bench`: how fast the service takes pings, over HTTP and sockets, how fast it fans a
// change out, what an idle socket costs, and how ping throughput holds as the table grows,
// next to the ceilings of the same stack, all measured in the same run, what reading the
// whole list costs at the largest size, and how subscriptions scale (watch lists, everyone-
// followers under steady change). The socket rows are measured over /ws and over Socket.IO.
// See docs/performance.md.

const log = (line: string) => process.stderr.write(`${line}\n`);
const n = (value: number) => value.toLocaleString('en');

/** Measures into `r`, step by step: what was measured stays there if a later step fails. */
async function benchmark(options: BenchOptions, r: BenchResults): Promise<void> {
  const { phase, build, scratch, db, cpu } = await prepareRun(r, log);
  const { connections } = options;

  await phase.run('HTTP ceiling', async () => {
    const ceiling = await startCeilingServer();
    const url = ceiling.url;
    await runCeilingLoad({ url, connections, durationS: options.warmupS });
    const target = { ...cpu, servicePid: ceiling.pid };
    r.ceilings.http = await runCeilingLoad({
      url,
      connections,
      durationS: options.ceilingS,
      cpu: target,
    });
    await ceiling.stop();
  });

  const start = async () => {
    const { awayTimeoutSeconds } = options;
    const service = await startService({ build, databaseUrl: scratch.url, awayTimeoutSeconds });
    return { service, cpu: { ...cpu, servicePid: service.pid } };
  };
  const stop = async (service: Service) => {
    r.serviceWarnings.push(...service.warnings);
    await service.stop();
  };

  const sockets = { options, r, build, databaseUrl: scratch.url, cpu, phase };
  await measureIdleSockets(sockets, 'ws');
  await measureIdleSockets(sockets, 'socketio');

  let users = 0;
  const pingRun = (url: string, target: CpuTargets, durationS: number, changeShare = 0) =>
    runPingLoad({
      db,
      url,
      connections,
      users,
      warmupS: options.warmupS,
      durationS,
      changeShare,
      cpu: target,
    });

  for (const target of options.scaleUsers) {
    let fill: FillResult;
    try {
      fill = await phase.run(`fill to ${n(target)} users`, () =>
        fillUsers(db, users + 1, target, { timeoutS: options.fillTimeoutS, url: scratch.url }),
      );
    } catch (error) {
      if (!(error instanceof FillTooSlow)) throw error;
      r.fillTooSlow = { users: target, added: error.added, overS: error.seconds };
      log(`  ${error.message}: the scale points from ${n(target)} users on are skipped`);
      break;
    }
    users = target;

    if (target === options.mainUsers) {
      r.ceilings.pgbench = await phase.run(`DB ceiling: pgbench, ${n(users)} users`, () =>
        runPgbench({ url: scratch.url, users, ...options.pgbench, cpu }),
      );
    }
    const started = await start();
    const service = started.service;
    const { run: http } = await phase.run(`HTTP ping, heartbeats, ${n(users)} users`, () =>
      pingRun(service.url, started.cpu, options.httpS),
    );
    r.scale.push({ users, fill, http });
    if (target === options.scaleUsers.at(-1)) {
      // The table also holds the fan-out's and the socket run's marker users by now.
      const { rows } = await db.query<{ n: number }>(
        'select count(*)::int as n from presently.presence',
      );
      const listed = rows[0]?.n ?? users;
      r.list = await phase.run(`whole list, ${n(users)} users`, () =>
        runListRead({ url: service.url, servicePid: service.pid, users: listed }),
      );
    }
    if (target === options.scaleUsers[0]) await measureSocketPings(sockets, service, users);
    if (target === options.mainUsers) {
      const share = options.mixedChangeShare;
      const mixed = await phase.run(
        `HTTP ping, mixed (${share * 100}% change), ${n(users)} users`,
        () => pingRun(service.url, started.cpu, options.mixedS, share),
      );
      await stop(service);
      r.mixed = { ...mixed.run, restoredUsers: await restoreHeartbeatStatus(db, mixed.flipped) };
    } else {
      await stop(service);
    }
    await measureSubscriptions(
      { options, r, build, databaseUrl: scratch.url, db, cpu, phase },
      users,
    );
  }
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  const loadAverage = () => os.loadavg().map((value) => round(value, 2));
  log(`${options.mode} benchmark (load average ${loadAverage().join(' ')})`);
  const removeHandlers = onInterrupt(() => cleanUpAll(log), log);
  const began = performance.now();
  // How busy the machine is before anything starts: others' work shows in every number.
  const quiet = startCpuSampler({});
  await sleep(1_000);
  const before = await quiet.stop();
  log(`CPU busy before starting: ${Math.round(CORES * 100 - before.idle)}% of ${CORES * 100}%`);
  const r: BenchResults = {
    benchmark: 'service',
    mode: options.mode,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    totalS: 0,
    loadAverage: { atStart: loadAverage(), atEnd: [] },
    busyBeforeStart: Math.round(CORES * 100 - before.idle),
    phasesS: {},
    ceilings: {},
    scale: [],
    serviceWarnings: [],
    targets: [],
  };
  try {
    if (options.mode === 'list') await benchmarkList(options, r, log);
    else if (options.mode.startsWith('bulk')) await benchmarkBulk(options, r, log);
    else if (options.mode.startsWith('sessions')) await benchmarkSessions(options, r, log);
    else if (options.mode.startsWith('subscriptions'))
      await benchmarkSubscriptions(options, r, log);
    else if (options.mode.startsWith('socketio')) await benchmarkSockets(options, r, log);
    else await benchmark(options, r);
  } catch (error) {
    r.error = (error as Error).stack ?? String(error);
    log(`benchmark failed: ${r.error}`);
    process.exitCode = 1;
  } finally {
    await cleanUpAll(log);
    removeHandlers();
  }
  r.loadAverage.atEnd = loadAverage();
  r.finishedAt = new Date().toISOString();
  r.totalS = round((performance.now() - began) / 1000, 1);
  r.targets = judge(r, options.mainUsers);
  process.stdout.write(`\n${formatTable(r)}\n`);
  log(`\nresults: ${await writeResults(r)} (${r.totalS} s)`);
}

void main();
