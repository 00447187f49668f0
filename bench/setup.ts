import pg from 'pg';
import type { CpuTargets } from './cpu.js';
import { createScratchDatabase, type ScratchDatabase } from './database.js';
import { describeMachine, type MachineInfo, postmasterPid } from './machine.js';
import { onCleanup } from './process.js';

// The database the benchmark works in: a scratch database (see database.ts: on the server in
// DATABASE_URL, or on an embedded server of its own), dropped at the end, whatever happens. The
// service migrates it when it first starts, with the migrations of its build.

export interface BenchDatabase {
  scratch: ScratchDatabase;
  /** The benchmark's own connection, for fills, VACUUM and counters. */
  db: pg.Client;
  cpu: CpuTargets;
  machine: MachineInfo;
}

export async function setUpDatabase(options: {
  log: (line: string) => void;
}): Promise<BenchDatabase> {
  const { log } = options;
  const scratch = await createScratchDatabase({ databaseUrl: process.env.DATABASE_URL, log });
  onCleanup(() => scratch.drop());
  log(`scratch database ${scratch.name} (${scratch.kind})`);
  const db = new pg.Client({ connectionString: scratch.url, application_name: 'presently-bench' });
  // The database is dropped with force at the end, ending this connection under it.
  db.on('error', () => {});
  await db.connect();
  onCleanup(() => db.end().catch(() => {}));
  const cpu: CpuTargets = { postmasterPid: await postmasterPid(db), database: scratch.name };
  return { scratch, db, cpu, machine: await describeMachine(db) };
}
