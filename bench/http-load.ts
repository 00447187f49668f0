import autocannon from 'autocannon';
import type pg from 'pg';
import { type CpuShare, type CpuTargets, startCpuSampler } from './cpu.js';
import { commits } from './machine.js';
import { ACCESS_KEY } from './service.js';
import { round as roundTo } from './stats.js';
import { pingBodies } from './users.js';

// HTTP load with autocannon: keep-alive connections, one request at a time on each, every
// request a `POST /users/ping` with a body of its own (see users.ts).

export interface HttpLoadResult {
  connections: number;
  durationS: number;
  requests: number;
  /** Answers 2xx per second. */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Pings sent that changed their user's status (mixed runs). */
  changes?: number;
  cpu?: CpuShare;
}

export interface HttpLoadOptions {
  url: string;
  connections: number;
  durationS: number;
  /** Users in the table; pings walk them all. */
  users: number;
  /** Share of pings that change their user's status (0: heartbeats only). */
  changeShare?: number;
  /** Where the walk over the users starts (so that runs do not all begin at user 1). */
  start?: number;
  /** A named session every ping carries (none: the user's default session). */
  session?: string;
  cpu?: CpuTargets;
}

export async function runHttpLoad(
  options: HttpLoadOptions,
): Promise<HttpLoadResult & { flipped: Set<number> }> {
  const { users, changeShare = 0, start = 0, session } = options;
  const bodies = pingBodies(users, changeShare, start, session);
  const sampler = options.cpu ? startCpuSampler(options.cpu) : undefined;
  const result = await autocannon({
    url: `${options.url}/users/ping`,
    method: 'POST',
    connections: options.connections,
    pipelining: 1,
    duration: options.durationS,
    timeout: 10,
    headers: { authorization: `Bearer ${ACCESS_KEY}`, 'content-type': 'application/json' },
    requests: [{ setupRequest: (request) => ({ ...request, body: bodies.next() }) }],
  });
  const cpu = await sampler?.stop();
  const ok = result['2xx'];
  return {
    connections: options.connections,
    durationS: round(result.duration),
    requests: ok,
    rps: Math.round(ok / result.duration),
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      mean: round(result.latency.mean),
    },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    ...(options.changeShare ? { changes: bodies.changed() } : {}),
    ...(cpu ? { cpu } : {}),
    flipped: bodies.flipped,
  };
}

export interface PingRun extends HttpLoadResult {
  users: number;
  /** Pings per database transaction (commits counted by PostgreSQL), about. */
  pingsPerCommit?: number;
}

/**
 * A measured ping run on the service: a warm-up of heartbeats first, then the run, each starting
 * at a random place in the walk over the users. Commits counted by PostgreSQL meanwhile tell how
 * many pings the service wrote per transaction.
 */
export async function runPingLoad(
  options: Omit<HttpLoadOptions, 'start'> & { db: pg.Client; warmupS: number },
): Promise<{ run: PingRun; flipped: Set<number> }> {
  const { db, warmupS, users, ...rest } = options;
  const start = () => Math.floor(Math.random() * users);
  await runHttpLoad({
    ...rest,
    users,
    changeShare: 0,
    cpu: undefined,
    durationS: warmupS,
    start: start(),
  });
  const before = await commits(db);
  const { flipped, ...result } = await runHttpLoad({ ...rest, users, start: start() });
  const committed = (await commits(db)) - before;
  const pingsPerCommit = committed > 0 ? roundTo(result.requests / committed, 1) : undefined;
  return { run: { ...result, users, ...(pingsPerCommit ? { pingsPerCommit } : {}) }, flipped };
}

/** A constant-body load for the ceiling server. */
export async function runCeilingLoad(options: {
  url: string;
  connections: number;
  durationS: number;
  cpu?: CpuTargets;
}): Promise<HttpLoadResult> {
  const { flipped: _, ...measured } = await runHttpLoad({ ...options, users: 1_000 });
  return measured;
}

const round = (n: number) => Math.round(n * 100) / 100;
