import { fillUsers } from './fill.js';
import { runListRead } from './list.js';
import type { BenchOptions } from './options.js';
import { prepareRun } from './prepare.js';
import type { BenchResults } from './report.js';
import { startService } from './service.js';

// `npm run bench -- --list`: only the whole-list row, at the full run's largest table size,
// for a number in two minutes rather than the whole benchmark's five.

export async function benchmarkList(
  options: BenchOptions,
  r: BenchResults,
  log: (line: string) => void,
): Promise<void> {
  const { phase, build, scratch, db } = await prepareRun(r, log);
  const start = () =>
    startService({
      build,
      databaseUrl: scratch.url,
      awayTimeoutSeconds: options.awayTimeoutSeconds,
    });
  // The service migrates the scratch database when it first starts; it must not run during
  // the fill (it would replay every change to its snapshots).
  await phase.run('migrate', async () => (await start()).stop());
  const users = options.scaleUsers.at(-1) ?? 0;
  // How long the fill took is in phasesS; its rows are the full run's business.
  await phase.run(`fill to ${users.toLocaleString('en')} users`, () =>
    fillUsers(db, 1, users, { timeoutS: options.fillTimeoutS, url: scratch.url }),
  );
  const service = await start();
  r.list = await phase.run(`whole list, ${users.toLocaleString('en')} users`, () =>
    runListRead({ url: service.url, servicePid: service.pid, users }),
  );
  r.serviceWarnings.push(...service.warnings);
  await service.stop();
}
