import { runBulkLoad } from './bulk.js';
import { fillUsers } from './fill.js';
import { runPingLoad } from './http-load.js';
import type { BenchOptions } from './options.js';
import { runPgbench } from './pgbench.js';
import { prepareRun } from './prepare.js';
import type { BenchResults } from './report.js';
import { startService } from './service.js';

// `npm run bench -- --bulk`: only the rows of the issue "Performance" (bulk pings, cores), each
// beside its ceiling in the same run: pgbench's 100-row batches and single pings for bulk
// pings, WORKERS=1 for WORKERS=2, all at the main table size.

/** Connections sending bulk requests: each carries 1,000 pings, a batch's worth. */
const BULK_CONNECTIONS = 8;

export async function benchmarkBulk(
  options: BenchOptions,
  r: BenchResults,
  log: (line: string) => void,
): Promise<void> {
  const { phase, build, scratch, db, cpu } = await prepareRun(r, log);
  const start = async (workers = 1) => {
    const { awayTimeoutSeconds } = options;
    const service = await startService({
      build,
      databaseUrl: scratch.url,
      awayTimeoutSeconds,
      workers,
    });
    return { service, cpu: { ...cpu, servicePid: service.pid } };
  };
  const stop = async ({ service }: Awaited<ReturnType<typeof start>>) => {
    r.serviceWarnings.push(...service.warnings);
    await service.stop();
  };
  // Migrates the scratch database before the fill.
  await phase.run('migrate', async () => stop(await start()));
  const users = options.mainUsers;
  const n = users.toLocaleString('en');
  await phase.run(`fill to ${n} users`, () =>
    fillUsers(db, 1, users, { timeoutS: options.fillTimeoutS, url: scratch.url }),
  );
  r.ceilings.pgbench = await phase.run(`DB ceiling: pgbench, ${n} users`, () =>
    runPgbench({ url: scratch.url, users, ...options.pgbench, cpu }),
  );

  const pingRun = (url: string, target: typeof cpu) =>
    runPingLoad({
      db,
      url,
      connections: options.connections,
      users,
      warmupS: options.warmupS,
      durationS: options.httpS,
      cpu: target,
    });
  const one = await start(1);
  const single = await phase.run(`HTTP ping, 1 worker, ${n} users`, () =>
    pingRun(one.service.url, one.cpu),
  );
  await runBulkLoad({
    url: one.service.url,
    connections: BULK_CONNECTIONS,
    durationS: options.warmupS,
    users,
  });
  const bulk = await phase.run(`HTTP bulk ping (1,000 a request), ${n} users`, () =>
    runBulkLoad({
      url: one.service.url,
      connections: BULK_CONNECTIONS,
      durationS: options.httpS,
      users,
      cpu: one.cpu,
    }),
  );
  await stop(one);

  const two = await start(2);
  const twoWorkers = await phase.run(`HTTP ping, 2 workers, ${n} users`, () =>
    pingRun(two.service.url, two.cpu),
  );
  const bulkTwo = await phase.run(`HTTP bulk ping, 2 workers, ${n} users`, () =>
    runBulkLoad({
      url: two.service.url,
      connections: BULK_CONNECTIONS,
      durationS: options.httpS,
      users,
      cpu: two.cpu,
    }),
  );
  await stop(two);
  r.bulk = {
    users,
    single: single.run,
    bulk,
    workers2: { single: twoWorkers.run, bulk: bulkTwo },
  };
}
