import pg from 'pg';
import { runPingLoad } from './http-load.js';
import type { BenchOptions } from './options.js';
import { prepareRun } from './prepare.js';
import type { BenchResults } from './report.js';
import { startService } from './service.js';
import { fillSessions, hotUpdates, measureSweeps } from './sessions.js';

// `npm run bench -- --sessions`: the row of the issue "Devices". Users of two named sessions
// each (a phone and a laptop), at 1,000 users and at a million: named-session heartbeats over
// HTTP through the service (each ping `{"id", "status", "session": "phone"}`, its user's own
// status, so nothing changes), with the CPU split; and the away sweep's time per run over those
// sessions, with nobody due and with 1% due.

export async function benchmarkSessions(
  options: BenchOptions,
  r: BenchResults,
  log: (line: string) => void,
): Promise<void> {
  const { phase, build, scratch, db, cpu } = await prepareRun(r, log);
  const { awayTimeoutSeconds } = options;
  const start = async () => {
    const service = await startService({ build, databaseUrl: scratch.url, awayTimeoutSeconds });
    return { service, cpu: { ...cpu, servicePid: service.pid } };
  };
  const stop = async ({ service }: Awaited<ReturnType<typeof start>>) => {
    r.serviceWarnings.push(...service.warnings);
    await service.stop();
  };
  // Migrates the scratch database before the fill.
  await phase.run('migrate', async () => stop(await start()));
  const client = new pg.Client({ connectionString: scratch.url });
  await client.connect();
  const hot = hotUpdates(client);
  r.sessions = [];
  let users = 0;
  try {
    for (const target of options.sessionsUsers) {
      const n = target.toLocaleString('en');
      const fillS = await phase.run(`fill to ${n} users of two sessions`, () =>
        fillSessions(client, users + 1, target, awayTimeoutSeconds),
      );
      users = target;
      await hot();
      const running = await start();
      const { run: heartbeats } = await phase.run(`named-session heartbeats, ${n} users`, () =>
        runPingLoad({
          db,
          url: running.service.url,
          connections: options.connections,
          users,
          warmupS: options.warmupS,
          durationS: options.httpS,
          session: 'phone',
          cpu: running.cpu,
        }),
      );
      // The service's own sweeper is stopped with it: the sweeps are measured alone.
      await stop(running);
      const hotPercent = await hot();
      const sweeps = await phase.run(`away sweep, ${n} users`, () =>
        measureSweeps(client, awayTimeoutSeconds),
      );
      r.sessions.push({ users, sessions: 2 * users, fillS, heartbeats, hotPercent, sweeps });
    }
  } finally {
    await client.end();
  }
}
