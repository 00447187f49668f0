import type pg from 'pg';
import { measurePgCpu, type PgTarget } from './capacity-cpu.js';

// The away sweep's cost: presently.sweep_away() as every instance runs it once a second.
// Two numbers: the scan with nobody due (what each instance pays every second whatever happens)
// and a sweep that marks a share of the users away (what a user's timing out costs on top).
//
// Making users due without the triggers seeing a change: with a timeout of an hour, a share of
// the users get a last ping half an hour old (a heartbeat to the triggers), then the timeout is
// lowered to ten minutes. Raising it again logs them back (the settings trigger), which re-arms
// the next sweep. Set-up is not measured.

const LONG = "interval '1 hour'";
const SHORT = "interval '10 minutes'";

export interface SweepResult {
  users: number;
  /** Median over the runs, PostgreSQL CPU ms of one sweep with nobody due. */
  idleCpuMs: number;
  idleWallMs: number;
  /** A sweep that marks `share` of the users away (median of the runs). */
  share: number;
  swept: number;
  dueCpuMs: number;
  dueWallMs: number;
  /** (dueCpuMs - idleCpuMs) / swept, µs. */
  cpuUsPerSweptUser: number;
}

export async function measureSweep(options: {
  db: pg.Client;
  target: PgTarget;
  users: number;
  share: number;
  idleRuns: number;
  dueRuns: number;
}): Promise<SweepResult> {
  const { db, target, users, share } = options;
  const every = Math.round(1 / share);
  await db.query(`update presently.settings set away_timeout = ${LONG}`);
  await db.query(
    `update presently.presence set last_ping = now() - interval '30 minutes'
     where user_id::bigint % $1 = 0`,
    [every],
  );
  await db.query('vacuum analyze presently.presence');
  const sweep = () => db.query<{ n: number }>('select presently.sweep_away() as n');
  await sweep(); // warms the cache and the plan: nobody is due yet

  const idle: { cpu: number; wall: number }[] = [];
  for (let i = 0; i < options.idleRuns; i += 1) {
    const m = await measurePgCpu(target, sweep);
    idle.push({ cpu: m.cpuNs / 1e6, wall: m.wallMs });
  }
  const due: { cpu: number; wall: number; swept: number }[] = [];
  for (let i = 0; i < options.dueRuns; i += 1) {
    await db.query(`update presently.settings set away_timeout = ${LONG}`);
    await db.query(`update presently.settings set away_timeout = ${SHORT}`);
    await db.query('vacuum presently.presence');
    const m = await measurePgCpu(target, sweep);
    due.push({ cpu: m.cpuNs / 1e6, wall: m.wallMs, swept: m.result.rows[0]?.n ?? 0 });
  }
  // Put the users back as they were: fresh pings, nobody away, the timeout an hour.
  await db.query(`update presently.settings set away_timeout = ${LONG}`);
  await db.query(`update presently.presence set last_ping = now() where user_id::bigint % $1 = 0`, [
    every,
  ]);
  await db.query('vacuum analyze presently.presence, presently.status_changes');

  const idleCpuMs = median(idle.map((r) => r.cpu));
  const dueCpuMs = median(due.map((r) => r.cpu));
  const swept = median(due.map((r) => r.swept));
  return {
    users,
    idleCpuMs,
    idleWallMs: median(idle.map((r) => r.wall)),
    share,
    swept,
    dueCpuMs,
    dueWallMs: median(due.map((r) => r.wall)),
    cpuUsPerSweptUser: swept > 0 ? ((dueCpuMs - idleCpuMs) * 1000) / swept : 0,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return 0;
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
