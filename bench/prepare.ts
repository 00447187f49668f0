import type { BenchResults } from './report.js';
import { buildService } from './service.js';
import { setUpDatabase } from './setup.js';
import { phaseClock } from './stats.js';

/**
 * What every benchmark mode does first: the service built, the scratch database set up, and
 * both recorded in the results with the machine, each step timed.
 */
export async function prepareRun(r: BenchResults, log: (line: string) => void) {
  const phase = phaseClock(log);
  r.phasesS = phase.seconds;
  const build = await phase.run('build', () => buildService());
  r.service = { commit: build.commit, uncommitted: build.uncommitted };
  const database = await phase.run('database', () => setUpDatabase({ log }));
  r.machine = database.machine;
  r.database = { kind: database.scratch.kind, name: database.scratch.name };
  return { phase, build, ...database };
}
