import type pg from 'pg';
import type { CpuTargets } from './cpu.js';
import { fillUsers } from './fill.js';
import type { BenchOptions } from './options.js';
import { prepareRun } from './prepare.js';
import type { BenchResults } from './report.js';
import { type ServiceBuild, startService } from './service.js';
import type { phaseClock } from './stats.js';
import { runEveryoneSteady, runWatchFanout } from './subscriptions.js';

// The subscription rows, each on a service started for it (after the fill of its table size):
// in the full and quick runs at their scale points, and alone with --subscriptions.

const n = (value: number) => value.toLocaleString('en');

export interface SubscriptionContext {
  options: BenchOptions;
  r: BenchResults;
  build: ServiceBuild;
  databaseUrl: string;
  db: pg.Client;
  cpu: CpuTargets;
  phase: ReturnType<typeof phaseClock>;
}

/** The subscription rows that run at a table of `users` users (none, one or both). */
export async function measureSubscriptions(ctx: SubscriptionContext, users: number) {
  const { options, r, phase } = ctx;
  const run = async <T>(name: string, step: (s: ServiceUnder) => Promise<T>): Promise<T> => {
    const service = await startService({
      build: ctx.build,
      databaseUrl: ctx.databaseUrl,
      awayTimeoutSeconds: options.awayTimeoutSeconds,
    });
    try {
      return await phase.run(name, () =>
        step({ ...service, cpu: { ...ctx.cpu, servicePid: service.pid } }),
      );
    } finally {
      r.serviceWarnings.push(...service.warnings);
      await service.stop();
    }
  };
  const e = options.everyone;
  if (users === e.users) {
    r.everyone = await run(
      `everyone-followers: ${e.sockets} sockets, a change every ${e.periodMs} ms, ${n(users)} users`,
      (s) =>
        runEveryoneSteady({
          url: s.url,
          wsUrl: s.wsUrl,
          db: ctx.db,
          users,
          sockets: e.sockets,
          periodMs: e.periodMs,
          durationS: e.durationS,
          settleS: e.settleS,
          cpu: s.cpu,
        }),
    );
  }
  const w = options.watchFanout;
  if (users === w.users) {
    r.watchFanout = await run(
      `watch-list fan-out: ${n(w.sockets)} sockets x ${w.perSocket} users, ${n(users)} users`,
      (s) =>
        runWatchFanout({
          url: s.url,
          wsUrl: s.wsUrl,
          servicePid: s.pid,
          db: ctx.db,
          users,
          sockets: w.sockets,
          perSocket: w.perSocket,
          changingUsers: w.changingUsers,
          changesPerSecond: w.changesPerSecond,
          durationS: w.durationS,
          cpu: s.cpu,
        }),
    );
  }
}

interface ServiceUnder {
  url: string;
  wsUrl: string;
  pid: number;
  cpu: CpuTargets;
}

/** `npm run bench -- --subscriptions`: the fills the rows need, and the rows. */
export async function benchmarkSubscriptions(
  options: BenchOptions,
  r: BenchResults,
  log: (line: string) => void,
): Promise<void> {
  const { phase, build, scratch, db, cpu } = await prepareRun(r, log);
  // The service migrates the scratch database when it first starts; it must not run during
  // the fills (it would replay every change to its snapshots).
  await phase.run('migrate', async () =>
    (
      await startService({
        build,
        databaseUrl: scratch.url,
        awayTimeoutSeconds: options.awayTimeoutSeconds,
      })
    ).stop(),
  );
  const ctx: SubscriptionContext = { options, r, build, databaseUrl: scratch.url, db, cpu, phase };
  let users = 0;
  for (const target of options.scaleUsers) {
    const fill = await phase.run(`fill to ${n(target)} users`, () =>
      fillUsers(db, users + 1, target, { timeoutS: options.fillTimeoutS, url: scratch.url }),
    );
    users = target;
    r.subscriptionFills = [...(r.subscriptionFills ?? []), fill];
    await measureSubscriptions(ctx, users);
  }
}
